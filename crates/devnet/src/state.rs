//! The world state in memory, with two layers of pending changes: the block in progress and the
//! receipt in progress (rolled back when a receipt fails).
//!
//! Keys are a column byte followed by the account id and, where needed, `,` and a sub key (an
//! account id never contains `,`).

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use near_crypto::PublicKey;
use near_primitives::account::AccessKey;
use near_primitives::hash::CryptoHash;
use near_primitives::types::AccountId;

pub const COL_ACCOUNT: u8 = 1;
pub const COL_ACCESS_KEY: u8 = 2;
pub const COL_CODE: u8 = 3;
pub const COL_DATA: u8 = 4;
pub const COL_POSTPONED: u8 = 5;
pub const COL_RECEIVED_DATA: u8 = 6;
pub const COL_PENDING_COUNT: u8 = 7;
pub const COL_DATA_WAITER: u8 = 8;
pub const COL_YIELD: u8 = 9;
pub const COL_YIELD_QUEUE: u8 = 10;
pub const COL_NEXT_RECEIPTS: u8 = 11;

const SEP: u8 = b',';

/// An account as the devnet stores it.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub amount: u128,
    pub locked: u128,
    pub code_hash: CryptoHash,
    pub storage_usage: u64,
}

/// A pending yield: who created it and at which height it times out.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct YieldEntry {
    pub account_id: AccountId,
    pub expires_at: u64,
}

pub fn account_key(account: &AccountId) -> Vec<u8> {
    let mut k = vec![COL_ACCOUNT];
    k.extend_from_slice(account.as_bytes());
    k
}

fn account_prefixed(col: u8, account: &AccountId) -> Vec<u8> {
    let mut k = vec![col];
    k.extend_from_slice(account.as_bytes());
    k.push(SEP);
    k
}

pub fn access_key_prefix(account: &AccountId) -> Vec<u8> {
    account_prefixed(COL_ACCESS_KEY, account)
}

pub fn access_key_key(account: &AccountId, pk: &PublicKey) -> Vec<u8> {
    let mut k = access_key_prefix(account);
    k.extend_from_slice(&borsh::to_vec(pk).unwrap_or_default());
    k
}

pub fn code_key(account: &AccountId) -> Vec<u8> {
    let mut k = vec![COL_CODE];
    k.extend_from_slice(account.as_bytes());
    k
}

pub fn data_prefix(account: &AccountId) -> Vec<u8> {
    account_prefixed(COL_DATA, account)
}

pub fn data_key(account: &AccountId, key: &[u8]) -> Vec<u8> {
    let mut k = data_prefix(account);
    k.extend_from_slice(key);
    k
}

pub fn hash_key(col: u8, hash: &CryptoHash) -> Vec<u8> {
    let mut k = vec![col];
    k.extend_from_slice(hash.as_ref());
    k
}

pub fn yield_queue_key(expires_at: u64, data_id: &CryptoHash) -> Vec<u8> {
    let mut k = vec![COL_YIELD_QUEUE];
    k.extend_from_slice(&expires_at.to_be_bytes());
    k.extend_from_slice(data_id.as_ref());
    k
}

/// State changes by key: `Some(value)` sets, `None` removes.
pub type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

#[derive(Default)]
pub struct State {
    base: BTreeMap<Vec<u8>, Vec<u8>>,
    block: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    receipt: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl State {
    pub fn new(base: BTreeMap<Vec<u8>, Vec<u8>>) -> Self {
        State {
            base,
            ..Default::default()
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        if let Some(v) = self.receipt.get(key) {
            return v.as_deref();
        }
        if let Some(v) = self.block.get(key) {
            return v.as_deref();
        }
        self.base.get(key).map(|v| v.as_slice())
    }

    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.receipt.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.receipt.insert(key.to_vec(), None);
    }

    /// All live entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.scan(prefix, |k| k.starts_with(prefix))
    }

    /// All live entries with `start <= key < end`, in key order.
    pub fn scan_range(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.scan(start, |k| k < end)
    }

    fn scan(&self, start: &[u8], keep: impl Fn(&[u8]) -> bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in self.base.range(start.to_vec()..) {
            if !keep(k) {
                break;
            }
            out.insert(k.clone(), v.clone());
        }
        for layer in [&self.block, &self.receipt] {
            for (k, v) in layer.range(start.to_vec()..) {
                if !keep(k) {
                    break;
                }
                match v {
                    Some(v) => out.insert(k.clone(), v.clone()),
                    None => out.remove(k),
                };
            }
        }
        out.into_iter().collect()
    }

    /// Keeps the changes of the receipt in progress.
    pub fn commit_receipt(&mut self) {
        let changes = std::mem::take(&mut self.receipt);
        self.block.extend(changes);
    }

    /// Drops the changes of the receipt in progress.
    pub fn rollback_receipt(&mut self) {
        self.receipt.clear();
    }

    /// Folds the block's changes into the base and returns them for persisting.
    pub fn finish_block(&mut self) -> Changes {
        self.finish_block_with_undo().0
    }

    /// [`State::finish_block`], also returning what undoes the block: every key it changed
    /// with the value it had before (`None`: the key did not exist).
    pub fn finish_block_with_undo(&mut self) -> (Changes, Changes) {
        self.commit_receipt();
        let changes = std::mem::take(&mut self.block);
        let mut undo = BTreeMap::new();
        for (k, v) in &changes {
            let old = match v {
                Some(v) => self.base.insert(k.clone(), v.clone()),
                None => self.base.remove(k),
            };
            undo.insert(k.clone(), old);
        }
        (changes, undo)
    }

    /// Runs `f` on the state as it was before some blocks: `undo` maps every key those
    /// blocks changed to its value before them (see [`State::finish_block_with_undo`]).
    /// Whatever `f` writes is dropped; the state is left as it was. Only between blocks
    /// (nothing pending).
    pub fn rewound<R>(&mut self, undo: Changes, f: impl FnOnce(&mut State) -> R) -> R {
        let block = std::mem::replace(&mut self.block, undo);
        let receipt = std::mem::take(&mut self.receipt);
        let result = f(self);
        self.block = block;
        self.receipt = receipt;
        result
    }

    pub fn get_borsh<T: BorshDeserialize>(&self, key: &[u8]) -> Option<T> {
        self.get(key).and_then(|v| T::try_from_slice(v).ok())
    }

    pub fn set_borsh<T: BorshSerialize>(&mut self, key: Vec<u8>, value: &T) {
        if let Ok(v) = borsh::to_vec(value) {
            self.set(key, v);
        }
    }

    pub fn account(&self, id: &AccountId) -> Option<AccountRecord> {
        self.get_borsh(&account_key(id))
    }

    pub fn set_account(&mut self, id: &AccountId, account: &AccountRecord) {
        self.set_borsh(account_key(id), account);
    }

    pub fn access_key(&self, id: &AccountId, pk: &PublicKey) -> Option<AccessKey> {
        self.get_borsh(&access_key_key(id, pk))
    }

    pub fn set_access_key(&mut self, id: &AccountId, pk: &PublicKey, key: &AccessKey) {
        self.set_borsh(access_key_key(id, pk), key);
    }

    pub fn access_keys(&self, id: &AccountId) -> Vec<(PublicKey, AccessKey)> {
        let prefix = access_key_prefix(id);
        self.scan_prefix(&prefix)
            .into_iter()
            .filter_map(|(k, v)| {
                let pk = PublicKey::try_from_slice(&k[prefix.len()..]).ok()?;
                let ak = AccessKey::try_from_slice(&v).ok()?;
                Some((pk, ak))
            })
            .collect()
    }

    pub fn code(&self, id: &AccountId) -> Option<Vec<u8>> {
        self.get(&code_key(id)).map(|c| c.to_vec())
    }

    /// Removes everything that belongs to an account.
    pub fn delete_account(&mut self, id: &AccountId) {
        self.remove(&account_key(id));
        self.remove(&code_key(id));
        for prefix in [access_key_prefix(id), data_prefix(id)] {
            for (k, _) in self.scan_prefix(&prefix) {
                self.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_rollback() {
        let mut s = State::default();
        s.set(b"a1".to_vec(), b"x".to_vec());
        s.commit_receipt();
        s.set(b"a2".to_vec(), b"y".to_vec());
        s.remove(b"a1");
        assert_eq!(s.scan_prefix(b"a").len(), 1);
        s.rollback_receipt();
        assert_eq!(s.get(b"a1"), Some(&b"x"[..]));
        assert_eq!(s.get(b"a2"), None);
        let changes = s.finish_block();
        assert_eq!(changes.len(), 1);
        assert_eq!(s.scan_prefix(b"a"), vec![(b"a1".to_vec(), b"x".to_vec())]);
        s.set(b"a3".to_vec(), b"z".to_vec());
        assert_eq!(
            s.scan_range(b"a", b"a3"),
            vec![(b"a1".to_vec(), b"x".to_vec())]
        );
    }

    #[test]
    fn undo_rewinds_a_block_without_touching_the_state() {
        let mut s = State::default();
        s.set(b"a1".to_vec(), b"x".to_vec());
        s.set(b"a2".to_vec(), b"y".to_vec());
        s.finish_block();
        s.set(b"a1".to_vec(), b"changed".to_vec());
        s.remove(b"a2");
        s.set(b"a3".to_vec(), b"new".to_vec());
        let (_, undo) = s.finish_block_with_undo();
        let before = vec![
            (b"a1".to_vec(), b"x".to_vec()),
            (b"a2".to_vec(), b"y".to_vec()),
        ];
        let seen = s.rewound(undo, |old| {
            old.set(b"a4".to_vec(), b"dropped".to_vec());
            old.commit_receipt();
            old.rollback_receipt();
            let mut seen = old.scan_prefix(b"a");
            seen.retain(|(k, _)| k.as_slice() != b"a4");
            seen
        });
        assert_eq!(seen, before);
        assert_eq!(
            s.scan_prefix(b"a"),
            vec![
                (b"a1".to_vec(), b"changed".to_vec()),
                (b"a3".to_vec(), b"new".to_vec()),
            ]
        );
    }
}
