//! The node's persistent state in one `redb` file: key shares by epoch, triples and
//! presignatures by (owner, id), and checkpoints. Secrets are sealed with [`cipher`].
//!
//! Use-once: taking a triple or presignature removes it in a committed (fsynced) write
//! transaction *before* it is handed out, so no crash, retry or second request can bring it
//! back. Taking several is all or nothing.

mod cipher;

use std::path::Path;

use chainsig_mpc::{KeyShare, ParticipantId, Presignature, Triple};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use cipher::Cipher;
pub use cipher::StorageKey;

/// The id an owner gives a triple or presignature; every participant files its share under
/// the owner and this id.
pub type AssetId = u64;

const SCHEMA_VERSION: u64 = 1;
const KEY_CHECK_PLAINTEXT: &[u8] = b"chainsig storage key check";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");
const KEY_SHARES: TableDefinition<u64, &[u8]> = TableDefinition::new("key_shares");
const TRIPLES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("triples");
const PRESIGNATURES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("presignatures");

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage database error: {0}")]
    Db(String),
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
        let db = Database::create(path).map_err(db_error)?;
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

    pub fn put_key_share(&self, epoch: u64, share: &KeyShare) -> Result<(), StorageError> {
        let sealed = self.seal(&epoch_place(epoch), share);
        let txn = self.db.begin_write().map_err(db_error)?;
        txn.open_table(KEY_SHARES)
            .map_err(db_error)?
            .insert(epoch, sealed.as_slice())
            .map_err(db_error)?;
        txn.commit().map_err(db_error)
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

    /// Removes the named assets in one committed transaction, then returns them.
    fn take_assets<T: DeserializeOwned, const N: usize>(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        ids: [AssetId; N],
    ) -> Result<[T; N], StorageError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        let mut sealed = Vec::with_capacity(N);
        {
            let mut table = txn.open_table(kind.table).map_err(db_error)?;
            for id in ids {
                let value = table.remove((owner.0, id)).map_err(db_error)?;
                let value = value.ok_or(StorageError::Missing {
                    what: kind.name,
                    owner,
                    id,
                })?;
                sealed.push((id, value.value().to_vec()));
            }
        }
        txn.commit().map_err(db_error)?;
        let values = sealed
            .into_iter()
            .map(|(id, bytes)| self.unseal(&place(kind.name, owner, id), &bytes))
            .collect::<Result<Vec<T>, _>>()?;
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
    fn asset_participants<T: DeserializeOwned>(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        participants: impl Fn(&T) -> Vec<ParticipantId>,
    ) -> Result<Vec<(AssetId, Vec<ParticipantId>)>, StorageError> {
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

    pub fn triple_participants(
        &self,
        owner: ParticipantId,
    ) -> Result<Vec<(AssetId, Vec<ParticipantId>)>, StorageError> {
        self.asset_participants(&TRIPLE, owner, |t: &Triple| t.participants.clone())
    }

    pub fn presignature_participants(
        &self,
        owner: ParticipantId,
    ) -> Result<Vec<(AssetId, Vec<ParticipantId>)>, StorageError> {
        self.asset_participants(&PRESIGNATURE, owner, |p: &Presignature| {
            p.participants.clone()
        })
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
        self.take_assets(&TRIPLE, owner, ids)
    }

    pub fn triple_ids(
        &self,
        owner: ParticipantId,
        limit: usize,
    ) -> Result<Vec<AssetId>, StorageError> {
        self.asset_ids(&TRIPLE, owner, limit)
    }

    pub fn put_presignature(
        &self,
        owner: ParticipantId,
        id: AssetId,
        presignature: &Presignature,
    ) -> Result<(), StorageError> {
        self.put_assets(&PRESIGNATURE, owner, &[(id, presignature)])
    }

    /// Takes a presignature for one signature: gone from storage once this returns.
    pub fn take_presignature(
        &self,
        owner: ParticipantId,
        id: AssetId,
    ) -> Result<Presignature, StorageError> {
        let [presignature] = self.take_assets(&PRESIGNATURE, owner, [id])?;
        Ok(presignature)
    }

    pub fn presignature_ids(
        &self,
        owner: ParticipantId,
        limit: usize,
    ) -> Result<Vec<AssetId>, StorageError> {
        self.asset_ids(&PRESIGNATURE, owner, limit)
    }

    /// Drops every triple and presignature, e.g. after a reshare made them useless.
    pub fn clear_assets(&self) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        for kind in [&TRIPLE, &PRESIGNATURE] {
            txn.delete_table(kind.table).map_err(db_error)?;
            txn.open_table(kind.table).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)
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

fn epoch_place(epoch: u64) -> Vec<u8> {
    let mut place = b"key_share".to_vec();
    place.extend_from_slice(&epoch.to_be_bytes());
    place
}
