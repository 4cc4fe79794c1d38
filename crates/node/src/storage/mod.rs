//! The node's persistent state in one `redb` file: key shares by epoch (with the key event
//! attempt that made them), triples and presignatures by (owner, id), and checkpoints.
//! Secrets are sealed with [`cipher`].
//!
//! Use-once: taking a triple or presignature removes it in a committed (fsynced) write
//! transaction *before* it is handed out, so no crash, retry or second request can bring it
//! back. Taking several is all or nothing.
//!
//! Epochs: a presignature holds a share of one epoch's key and carries that epoch; triples do
//! not depend on the key. When an epoch ends, [`Store::prune_to_epoch`] removes in one
//! transaction what the new epoch cannot use (other epochs' key shares and presignatures,
//! triples with a member who left); it runs only once the new epoch's share is stored.

mod cipher;
mod epochs;

use std::path::Path;

use chainsig_mpc::{KeyShare, ParticipantId, Presignature, Triple};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use cipher::Cipher;
pub use cipher::StorageKey;
pub use epochs::{Pruned, TripleRule};

/// The id an owner gives a triple or presignature; every participant files its share under
/// the owner and this id.
pub type AssetId = u64;

/// 2: presignature records carry their epoch (version 1's are dropped on upgrade: without
/// an epoch they cannot be told apart after a reshare), key shares their attempt.
const SCHEMA_VERSION: u64 = 2;
const KEY_CHECK_PLAINTEXT: &[u8] = b"chainsig storage key check";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");
const KEY_SHARES: TableDefinition<u64, &[u8]> = TableDefinition::new("key_shares");
/// Epoch → the key event attempt its share came from (not secret).
const KEY_ATTEMPTS: TableDefinition<u64, u64> = TableDefinition::new("key_share_attempts");
const TRIPLES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("triples");
const PRESIGNATURES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("presignatures");

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage database error: {0}")]
    Db(String),
    #[error("another process has this database open: is this node already running?")]
    InUse,
    #[error("{0}")]
    BadKey(String),
    #[error(
        "the storage key does not open this data directory (wrong key, or another node's data)"
    )]
    WrongKey,
    #[error("a stored record does not decrypt: wrong storage key or corrupt data")]
    Undecryptable,
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("the data directory was written by a newer schema ({0}) than this node knows")]
    UnknownSchema(u64),
    #[error("no {what} {owner}/{id} in storage (never stored, or already used)")]
    Missing {
        what: &'static str,
        owner: ParticipantId,
        id: AssetId,
    },
    #[error("{what} {owner}/{id} is already stored; ids are never reused")]
    AlreadyExists {
        what: &'static str,
        owner: ParticipantId,
        id: AssetId,
    },
    #[error("presignature {owner}/{id} belongs to epoch {stored}, not {wanted}")]
    WrongEpoch {
        owner: ParticipantId,
        id: AssetId,
        stored: u64,
        wanted: u64,
    },
}

fn db_error(error: impl Into<redb::Error>) -> StorageError {
    StorageError::Db(error.into().to_string())
}

/// One kind of use-once asset and the table it lives in.
struct AssetKind {
    name: &'static str,
    table: TableDefinition<'static, (u32, u64), &'static [u8]>,
}

const TRIPLE: AssetKind = AssetKind {
    name: "triple",
    table: TRIPLES,
};
const PRESIGNATURE: AssetKind = AssetKind {
    name: "presignature",
    table: PRESIGNATURES,
};

fn place(kind: &str, owner: ParticipantId, id: AssetId) -> Vec<u8> {
    let mut place = kind.as_bytes().to_vec();
    place.extend_from_slice(&owner.0.to_be_bytes());
    place.extend_from_slice(&id.to_be_bytes());
    place
}

pub struct Store {
    db: Database,
    cipher: Cipher,
}

impl Store {
    /// Opens (or creates) the store at `path`. A store created with another key is refused.
    pub fn open(path: &Path, key: &StorageKey) -> Result<Self, StorageError> {
        let db = Database::create(path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => StorageError::InUse,
            other => db_error(other),
        })?;
        let store = Self {
            db,
            cipher: Cipher::new(key),
        };
        store.initialize()?;
        Ok(store)
    }

    fn initialize(&self) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut meta = txn.open_table(META).map_err(db_error)?;
            let check = meta
                .get("key_check")
                .map_err(db_error)?
                .map(|v| v.value().to_vec());
            match check {
                Some(sealed) => {
                    let opened = self.cipher.open(b"key_check", &sealed);
                    if !matches!(opened, Ok(ref text) if text.as_slice() == KEY_CHECK_PLAINTEXT) {
                        return Err(StorageError::WrongKey);
                    }
                    let schema = meta
                        .get("schema")
                        .map_err(db_error)?
                        .map(|v| v.value().to_vec());
                    let schema = schema
                        .as_deref()
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(|| StorageError::Corrupt("schema version".into()))?;
                    if schema > SCHEMA_VERSION {
                        return Err(StorageError::UnknownSchema(schema));
                    }
                    if schema < 2 {
                        txn.delete_table(PRESIGNATURES).map_err(db_error)?;
                        meta.insert("schema", SCHEMA_VERSION.to_be_bytes().as_slice())
                            .map_err(db_error)?;
                    }
                }
                None => {
                    let sealed = self.cipher.seal(b"key_check", KEY_CHECK_PLAINTEXT);
                    meta.insert("key_check", sealed.as_slice())
                        .map_err(db_error)?;
                    meta.insert("schema", SCHEMA_VERSION.to_be_bytes().as_slice())
                        .map_err(db_error)?;
                }
            }
            // Create every table so that readers never meet a missing one.
            txn.open_table(CHECKPOINTS).map_err(db_error)?;
            txn.open_table(KEY_SHARES).map_err(db_error)?;
            txn.open_table(KEY_ATTEMPTS).map_err(db_error)?;
            txn.open_table(TRIPLES).map_err(db_error)?;
            txn.open_table(PRESIGNATURES).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)
    }

    fn seal<T: Serialize>(&self, place: &[u8], value: &T) -> Vec<u8> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(value).expect("stored types serialize to JSON"),
        );
        self.cipher.seal(place, &plain)
    }

    fn unseal<T: DeserializeOwned>(&self, place: &[u8], sealed: &[u8]) -> Result<T, StorageError> {
        let plain = self.cipher.open(place, sealed)?;
        serde_json::from_slice(&plain).map_err(|e| StorageError::Corrupt(e.to_string()))
    }

    // ----- key shares -----

    /// Stores this node's share of `epoch`'s key, made by key event attempt `attempt`. One
    /// from an earlier attempt of the same event is replaced, and the presignatures made with
    /// it go in the same transaction: they do not fit the new share.
    pub fn put_key_share(
        &self,
        epoch: u64,
        attempt: u64,
        share: &KeyShare,
    ) -> Result<(), StorageError> {
        let replaces = self.key_share_attempt(epoch)?.is_some_and(|a| a != attempt);
        let sealed = self.seal(&epoch_place(epoch), share);
        let txn = self.db.begin_write().map_err(db_error)?;
        if replaces {
            self.remove_presignatures(&txn, |e| e == epoch)?;
        }
        txn.open_table(KEY_SHARES)
            .map_err(db_error)?
            .insert(epoch, sealed.as_slice())
            .map_err(db_error)?;
        txn.open_table(KEY_ATTEMPTS)
            .map_err(db_error)?
            .insert(epoch, attempt)
            .map_err(db_error)?;
        txn.commit().map_err(db_error)
    }

    /// The attempt `epoch`'s stored share came from (`None`: no share; a share stored before
    /// attempts were recorded counts as attempt 0).
    pub fn key_share_attempt(&self, epoch: u64) -> Result<Option<u64>, StorageError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        if txn
            .open_table(KEY_SHARES)
            .map_err(db_error)?
            .get(epoch)
            .map_err(db_error)?
            .is_none()
        {
            return Ok(None);
        }
        let attempts = txn.open_table(KEY_ATTEMPTS).map_err(db_error)?;
        let attempt = attempts.get(epoch).map_err(db_error)?.map(|v| v.value());
        Ok(Some(attempt.unwrap_or(0)))
    }

    /// The epochs this node holds a share of, lowest first.
    pub fn key_share_epochs(&self) -> Result<Vec<u64>, StorageError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(KEY_SHARES).map_err(db_error)?;
        let range = table.range::<u64>(..).map_err(db_error)?;
        range
            .map(|entry| entry.map(|(epoch, _)| epoch.value()).map_err(db_error))
            .collect()
    }

    pub fn key_share(&self, epoch: u64) -> Result<Option<KeyShare>, StorageError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(KEY_SHARES).map_err(db_error)?;
        let sealed = table.get(epoch).map_err(db_error)?;
        sealed
            .map(|v| self.unseal(&epoch_place(epoch), v.value()))
            .transpose()
    }

    /// The share of the highest epoch stored.
    pub fn latest_key_share(&self) -> Result<Option<(u64, KeyShare)>, StorageError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(KEY_SHARES).map_err(db_error)?;
        let last = table.last().map_err(db_error)?;
        last.map(|(epoch, sealed)| {
            let epoch = epoch.value();
            Ok((epoch, self.unseal(&epoch_place(epoch), sealed.value())?))
        })
        .transpose()
    }

    // ----- triples and presignatures -----

    fn put_assets<T: Serialize>(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        items: &[(AssetId, T)],
    ) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut table = txn.open_table(kind.table).map_err(db_error)?;
            for (id, value) in items {
                if table.get((owner.0, *id)).map_err(db_error)?.is_some() {
                    return Err(StorageError::AlreadyExists {
                        what: kind.name,
                        owner,
                        id: *id,
                    });
                }
                let sealed = self.seal(&place(kind.name, owner, *id), value);
                table
                    .insert((owner.0, *id), sealed.as_slice())
                    .map_err(db_error)?;
            }
        }
        txn.commit().map_err(db_error)
    }

    /// Removes the named assets in one committed transaction, then returns them. Nothing is
    /// removed unless every one is there, decrypts, and passes `check`.
    fn take_assets<T: DeserializeOwned, const N: usize>(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        ids: [AssetId; N],
        check: impl Fn(AssetId, &T) -> Result<(), StorageError>,
    ) -> Result<[T; N], StorageError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        let mut values = Vec::with_capacity(N);
        {
            let mut table = txn.open_table(kind.table).map_err(db_error)?;
            for id in ids {
                let sealed = table.remove((owner.0, id)).map_err(db_error)?;
                let sealed = sealed.ok_or(StorageError::Missing {
                    what: kind.name,
                    owner,
                    id,
                })?;
                let value: T = self.unseal(&place(kind.name, owner, id), sealed.value())?;
                check(id, &value)?;
                values.push(value);
            }
        }
        // An early return above drops the transaction uncommitted: nothing was removed.
        txn.commit().map_err(db_error)?;
        Ok(values
            .try_into()
            .unwrap_or_else(|_| unreachable!("one value per id")))
    }

    /// The ids of up to `limit` assets `owner` has, lowest first.
    fn asset_ids(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        limit: usize,
    ) -> Result<Vec<AssetId>, StorageError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(kind.table).map_err(db_error)?;
        let range = table
            .range((owner.0, 0)..=(owner.0, u64::MAX))
            .map_err(db_error)?;
        range
            .take(limit)
            .map(|entry| entry.map(|(key, _)| key.value().1).map_err(db_error))
            .collect()
    }

    /// Every asset `owner` has, with who shares it (read at startup to rebuild the owner's
    /// index; the secret parts are dropped at once).
    fn asset_participants<T: DeserializeOwned, S>(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        participants: impl Fn(&T) -> S,
    ) -> Result<Vec<(AssetId, S)>, StorageError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(kind.table).map_err(db_error)?;
        let range = table
            .range((owner.0, 0)..=(owner.0, u64::MAX))
            .map_err(db_error)?;
        range
            .map(|entry| {
                let (key, sealed) = entry.map_err(db_error)?;
                let id = key.value().1;
                let value: T = self.unseal(&place(kind.name, owner, id), sealed.value())?;
                Ok((id, participants(&value)))
            })
            .collect()
    }

    /// `owner`'s triples made with `threshold`, with who shares each.
    pub fn triple_participants(
        &self,
        owner: ParticipantId,
        threshold: usize,
    ) -> Result<Vec<(AssetId, Vec<ParticipantId>)>, StorageError> {
        let all = self.asset_participants(&TRIPLE, owner, |t: &Triple| {
            (t.threshold == threshold).then(|| t.participants.clone())
        })?;
        Ok(all
            .into_iter()
            .filter_map(|(id, set)| Some((id, set?)))
            .collect())
    }

    /// `owner`'s presignatures of `epoch`, with who shares each.
    pub fn presignature_participants(
        &self,
        epoch: u64,
        owner: ParticipantId,
    ) -> Result<Vec<(AssetId, Vec<ParticipantId>)>, StorageError> {
        let all = self.asset_participants(&PRESIGNATURE, owner, |p: &EpochPresignature| {
            (p.epoch == epoch).then(|| p.presignature.participants.clone())
        })?;
        Ok(all
            .into_iter()
            .filter_map(|(id, set)| Some((id, set?)))
            .collect())
    }

    pub fn put_triples(
        &self,
        owner: ParticipantId,
        triples: &[(AssetId, Triple)],
    ) -> Result<(), StorageError> {
        self.put_assets(&TRIPLE, owner, triples)
    }

    /// Takes two triples of `owner` for a presignature: gone from storage once this returns.
    pub fn take_triples(
        &self,
        owner: ParticipantId,
        ids: [AssetId; 2],
    ) -> Result<[Triple; 2], StorageError> {
        self.take_assets(&TRIPLE, owner, ids, |_, _| Ok(()))
    }

    pub fn triple_ids(
        &self,
        owner: ParticipantId,
        limit: usize,
    ) -> Result<Vec<AssetId>, StorageError> {
        self.asset_ids(&TRIPLE, owner, limit)
    }

    /// Stores `owner`'s presignature `id`, made with the key share of `epoch`.
    pub fn put_presignature(
        &self,
        epoch: u64,
        owner: ParticipantId,
        id: AssetId,
        presignature: &Presignature,
    ) -> Result<(), StorageError> {
        let record = EpochPresignatureRef {
            epoch,
            presignature,
        };
        self.put_assets(&PRESIGNATURE, owner, &[(id, record)])
    }

    /// Takes a presignature of `epoch` for one signature: gone from storage once this
    /// returns. One of another epoch is refused and left in place.
    pub fn take_presignature(
        &self,
        epoch: u64,
        owner: ParticipantId,
        id: AssetId,
    ) -> Result<Presignature, StorageError> {
        let [record] =
            self.take_assets(&PRESIGNATURE, owner, [id], |id, p: &EpochPresignature| {
                if p.epoch == epoch {
                    Ok(())
                } else {
                    Err(StorageError::WrongEpoch {
                        owner,
                        id,
                        stored: p.epoch,
                        wanted: epoch,
                    })
                }
            })?;
        Ok(record.presignature)
    }

    /// The ids of up to `limit` presignatures `owner` has (of any epoch), lowest first.
    pub fn presignature_ids(
        &self,
        owner: ParticipantId,
        limit: usize,
    ) -> Result<Vec<AssetId>, StorageError> {
        self.asset_ids(&PRESIGNATURE, owner, limit)
    }

    // ----- checkpoints -----

    pub fn checkpoint(&self, name: &str) -> Result<Option<u64>, StorageError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(CHECKPOINTS).map_err(db_error)?;
        Ok(table.get(name).map_err(db_error)?.map(|v| v.value()))
    }

    pub fn set_checkpoint(&self, name: &str, value: u64) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        txn.open_table(CHECKPOINTS)
            .map_err(db_error)?
            .insert(name, value)
            .map_err(db_error)?;
        txn.commit().map_err(db_error)
    }
}

/// A presignature as stored: with the epoch whose key share it holds.
#[derive(serde::Deserialize)]
struct EpochPresignature {
    epoch: u64,
    presignature: Presignature,
}

#[derive(Serialize)]
struct EpochPresignatureRef<'a> {
    epoch: u64,
    presignature: &'a Presignature,
}

fn epoch_place(epoch: u64) -> Vec<u8> {
    let mut place = b"key_share".to_vec();
    place.extend_from_slice(&epoch.to_be_bytes());
    place
}
