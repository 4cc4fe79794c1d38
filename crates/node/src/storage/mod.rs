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
//!
//! Damage: the file's integrity is checked on every open (redb verifies the checksum of every
//! page of the committed trees), so a file changed outside redb is refused before anything
//! reads it. Should storage fail later (a record that does not decrypt under the right key, an
//! I/O error, a panic inside redb), the operation returns [`StorageError::Damaged`] or
//! [`StorageError::Io`], every later one fails the same way, and [`Store::damaged`] resolves:
//! the node stops rather than run on storage it cannot trust.

mod cipher;
mod epochs;
#[cfg(test)]
mod tests;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

#[derive(Debug, Clone, Error)]
pub enum StorageError {
    #[error("storage database error: {0}")]
    Db(String),
    /// The file is not what redb or this node wrote: it fails redb's integrity check, or a
    /// record does not decrypt although the key check passed. Storage cannot be trusted.
    #[error("the database is damaged: {0}")]
    Damaged(String),
    /// The file cannot be read or written (permissions, a directory in its place, a failing
    /// disk). Storage cannot be used.
    #[error("I/O error: {0}")]
    Io(String),
    #[error("another process has this database open: is this node already running?")]
    InUse,
    #[error("{0}")]
    BadKey(String),
    #[error(
        "the storage key does not open this data directory (wrong key, or another node's data)"
    )]
    WrongKey,
    #[error("the data directory was written by a newer schema ({0}) than this node knows")]
    UnknownSchema(u64),
    #[error("refusing to remove old key material: no key share of epoch {0} is stored")]
    NoShareOfEpoch(u64),
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

impl StorageError {
    /// Whether this error means storage can no longer be trusted or used (the node must stop),
    /// rather than one request being wrong.
    pub fn is_damage(&self) -> bool {
        matches!(self, StorageError::Damaged(_) | StorageError::Io(_))
    }
}

fn db_error(error: impl Into<redb::Error>) -> StorageError {
    match error.into() {
        redb::Error::Corrupted(why) => {
            StorageError::Damaged(format!("redb found it corrupt: {why}"))
        }
        // What redb read makes no sense (e.g. "Not a redb database: magic number mismatch").
        redb::Error::Io(error) if error.kind() == std::io::ErrorKind::InvalidData => {
            StorageError::Damaged(error.to_string())
        }
        redb::Error::Io(error) => StorageError::Io(error.to_string()),
        redb::Error::PreviousIo => StorageError::Io("an earlier write to the file failed".into()),
        redb::Error::DatabaseAlreadyOpen => StorageError::InUse,
        error @ (redb::Error::LockPoisoned(_) | redb::Error::TransactionPoisoned) => {
            StorageError::Damaged(format!("redb: {error}"))
        }
        other => StorageError::Db(other.to_string()),
    }
}

/// What a panic carried, as text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// A panic inside redb (it asserts on pages it cannot parse) as a storage error.
fn caught<T>(op: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    catch_unwind(AssertUnwindSafe(op)).unwrap_or_else(|panic| {
        Err(StorageError::Damaged(format!(
            "redb failed on it: {}",
            panic_text(&*panic)
        )))
    })
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

/// Where a sealed record lives; authenticated with it (see [`cipher`]).
#[derive(Clone, Copy)]
enum Place {
    KeyShare(u64),
    Asset(&'static str, ParticipantId, AssetId),
}

impl Place {
    fn aad(&self) -> Vec<u8> {
        match *self {
            Place::KeyShare(epoch) => {
                let mut place = b"key_share".to_vec();
                place.extend_from_slice(&epoch.to_be_bytes());
                place
            }
            Place::Asset(kind, owner, id) => {
                let mut place = kind.as_bytes().to_vec();
                place.extend_from_slice(&owner.0.to_be_bytes());
                place.extend_from_slice(&id.to_be_bytes());
                place
            }
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::KeyShare(epoch) => write!(f, "the key share of epoch {epoch}"),
            Place::Asset(kind, owner, id) => write!(f, "{kind} {id} of {owner}"),
        }
    }
}

pub struct Store {
    db: Database,
    cipher: Cipher,
    /// The first error that showed storage cannot be trusted; once set, every operation fails.
    damage: tokio::sync::watch::Sender<Option<StorageError>>,
}

impl Store {
    /// Opens (or creates) the store at `path`, checking the whole file's integrity first. A
    /// store created with another key is refused ([`StorageError::WrongKey`]), a damaged file
    /// too ([`StorageError::Damaged`]).
    pub fn open(path: &Path, key: &StorageKey) -> Result<Self, StorageError> {
        // A commit that a crash (or power loss) left half written fails its checksums, and
        // redb goes back to the commit before it: the one whose `commit` had returned. Say so.
        let rolled_back = Arc::new(AtomicBool::new(false));
        let seen = rolled_back.clone();
        let db = caught(|| {
            Database::builder()
                .set_check_integrity_on_open(true)
                .set_repair_callback(move |session| {
                    // Progress 0.3 is reported only when the last commit does not verify.
                    if (0.2..0.5).contains(&session.progress()) {
                        seen.store(true, Ordering::Relaxed);
                    }
                })
                .create(path)
                .map_err(db_error)
        })?;
        if rolled_back.load(Ordering::Relaxed) {
            tracing::warn!(
                path = %path.display(),
                "storage: the last commit did not verify (cut short by a crash?) and was rolled back"
            );
        }
        let store = Self {
            db,
            cipher: Cipher::new(key),
            damage: tokio::sync::watch::Sender::new(None),
        };
        store.guarded(|| store.initialize())?;
        Ok(store)
    }

    /// Resolves once an operation has found storage damaged or unusable, with that error.
    pub async fn damaged(&self) -> StorageError {
        let mut damage = self.damage.subscribe();
        let found = damage
            .wait_for(Option::is_some)
            .await
            .map(|error| error.clone());
        match found {
            Ok(Some(error)) => error,
            // The sender lives in `self`, so it is never dropped while this waits.
            _ => std::future::pending().await,
        }
    }

    /// Runs one storage operation: refused once storage is known damaged; a panic inside redb
    /// becomes [`StorageError::Damaged`]; a damage error is remembered for every later call.
    fn guarded<T>(&self, op: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
        if let Some(error) = self.damage.borrow().clone() {
            return Err(error);
        }
        let result = caught(op);
        if let Err(error) = &result {
            if error.is_damage() {
                self.damage.send_if_modified(|damage| {
                    let first = damage.is_none();
                    if first {
                        *damage = Some(error.clone());
                    }
                    first
                });
            }
        }
        result
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
                        .ok_or_else(|| {
                            StorageError::Damaged("the schema version record is unreadable".into())
                        })?;
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

    fn seal<T: Serialize>(&self, place: Place, value: &T) -> Result<Vec<u8>, StorageError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(value)
                .map_err(|e| StorageError::Db(format!("{place} does not serialize: {e}")))?,
        );
        Ok(self.cipher.seal(&place.aad(), &plain))
    }

    /// Opens a record. The key check at open proved the key right, so a record that does not
    /// open was changed on disk.
    fn unseal<T: DeserializeOwned>(&self, place: Place, sealed: &[u8]) -> Result<T, StorageError> {
        let plain = self.cipher.open(&place.aad(), sealed).map_err(|_| {
            StorageError::Damaged(format!(
                "{place} does not decrypt, although the storage key is right"
            ))
        })?;
        serde_json::from_slice(&plain)
            .map_err(|e| StorageError::Damaged(format!("{place} does not decode: {e}")))
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
        self.guarded(|| {
            let replaces = self.key_share_attempt(epoch)?.is_some_and(|a| a != attempt);
            let sealed = self.seal(Place::KeyShare(epoch), share)?;
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
        })
    }

    /// The attempt `epoch`'s stored share came from (`None`: no share; a share stored before
    /// attempts were recorded counts as attempt 0).
    pub fn key_share_attempt(&self, epoch: u64) -> Result<Option<u64>, StorageError> {
        self.guarded(|| {
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
        })
    }

    /// The epochs this node holds a share of, lowest first.
    pub fn key_share_epochs(&self) -> Result<Vec<u64>, StorageError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(db_error)?;
            let table = txn.open_table(KEY_SHARES).map_err(db_error)?;
            let range = table.range::<u64>(..).map_err(db_error)?;
            range
                .map(|entry| entry.map(|(epoch, _)| epoch.value()).map_err(db_error))
                .collect()
        })
    }

    pub fn key_share(&self, epoch: u64) -> Result<Option<KeyShare>, StorageError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(db_error)?;
            let table = txn.open_table(KEY_SHARES).map_err(db_error)?;
            let sealed = table.get(epoch).map_err(db_error)?;
            sealed
                .map(|v| self.unseal(Place::KeyShare(epoch), v.value()))
                .transpose()
        })
    }

    /// The share of the highest epoch stored.
    pub fn latest_key_share(&self) -> Result<Option<(u64, KeyShare)>, StorageError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(db_error)?;
            let table = txn.open_table(KEY_SHARES).map_err(db_error)?;
            let last = table.last().map_err(db_error)?;
            last.map(|(epoch, sealed)| {
                let epoch = epoch.value();
                Ok((epoch, self.unseal(Place::KeyShare(epoch), sealed.value())?))
            })
            .transpose()
        })
    }

    // ----- triples and presignatures -----

    fn put_assets<T: Serialize>(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        items: &[(AssetId, T)],
    ) -> Result<(), StorageError> {
        self.guarded(|| {
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
                    let sealed = self.seal(Place::Asset(kind.name, owner, *id), value)?;
                    table
                        .insert((owner.0, *id), sealed.as_slice())
                        .map_err(db_error)?;
                }
            }
            txn.commit().map_err(db_error)
        })
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
        self.guarded(|| {
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
                    let value: T =
                        self.unseal(Place::Asset(kind.name, owner, id), sealed.value())?;
                    check(id, &value)?;
                    values.push(value);
                }
            }
            // An early return above drops the transaction uncommitted: nothing was removed.
            txn.commit().map_err(db_error)?;
            values
                .try_into()
                .map_err(|_| StorageError::Db(format!("{} {owner}: one value per id", kind.name)))
        })
    }

    /// The ids of up to `limit` assets `owner` has, lowest first.
    fn asset_ids(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        limit: usize,
    ) -> Result<Vec<AssetId>, StorageError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(db_error)?;
            let table = txn.open_table(kind.table).map_err(db_error)?;
            let range = table
                .range((owner.0, 0)..=(owner.0, u64::MAX))
                .map_err(db_error)?;
            range
                .take(limit)
                .map(|entry| entry.map(|(key, _)| key.value().1).map_err(db_error))
                .collect()
        })
    }

    /// Every asset `owner` has, with who shares it (read at startup to rebuild the owner's
    /// index; the secret parts are dropped at once).
    fn asset_participants<T: DeserializeOwned, S>(
        &self,
        kind: &AssetKind,
        owner: ParticipantId,
        participants: impl Fn(&T) -> S,
    ) -> Result<Vec<(AssetId, S)>, StorageError> {
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(db_error)?;
            let table = txn.open_table(kind.table).map_err(db_error)?;
            let range = table
                .range((owner.0, 0)..=(owner.0, u64::MAX))
                .map_err(db_error)?;
            range
                .map(|entry| {
                    let (key, sealed) = entry.map_err(db_error)?;
                    let id = key.value().1;
                    let value: T =
                        self.unseal(Place::Asset(kind.name, owner, id), sealed.value())?;
                    Ok((id, participants(&value)))
                })
                .collect()
        })
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
        self.guarded(|| {
            let txn = self.db.begin_read().map_err(db_error)?;
            let table = txn.open_table(CHECKPOINTS).map_err(db_error)?;
            Ok(table.get(name).map_err(db_error)?.map(|v| v.value()))
        })
    }

    pub fn set_checkpoint(&self, name: &str, value: u64) -> Result<(), StorageError> {
        self.guarded(|| {
            let txn = self.db.begin_write().map_err(db_error)?;
            txn.open_table(CHECKPOINTS)
                .map_err(db_error)?
                .insert(name, value)
                .map_err(db_error)?;
            txn.commit().map_err(db_error)
        })
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
