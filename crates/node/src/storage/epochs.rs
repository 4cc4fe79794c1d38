//! Ending an epoch in storage. A reshare stores the new epoch's share first; only once the
//! contract runs at the new epoch, and this node holds that share, does the old epoch's key
//! material go, in one transaction, so a crash at any point leaves either both epochs or
//! only the new one. A node that is no longer a participant removes all of it.

use chainsig_mpc::{ParticipantId, Triple};
use redb::{ReadableTable, WriteTransaction};

use super::{
    db_error, EpochPresignature, Place, StorageError, Store, KEY_ATTEMPTS, KEY_SHARES,
    PRESIGNATURE, PRESIGNATURES, TRIPLE, TRIPLES,
};

/// What an epoch change removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub key_shares: usize,
    pub presignatures: usize,
    pub triples: usize,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Pruned::default()
    }
}

/// Which triples a new epoch keeps: made among its members, with its threshold. Triples do
/// not depend on the key, so those survive a reshare; the rest hold shares of a member who
/// left (or of another threshold) and can never be used.
pub struct TripleRule<'a> {
    /// The new epoch's participants, sorted.
    pub members: &'a [ParticipantId],
    pub threshold: usize,
}

impl TripleRule<'_> {
    fn keeps(&self, triple: &Triple) -> bool {
        triple.threshold == self.threshold
            && triple
                .participants
                .iter()
                .all(|p| self.members.binary_search(p).is_ok())
    }
}

impl Store {
    /// Keeps only what `epoch` can use: its own key share, its presignatures, and the triples
    /// `triples` keeps. Refuses to run while this node holds no share of `epoch`: the old
    /// share must never go before the new one is safe.
    pub fn prune_to_epoch(
        &self,
        epoch: u64,
        triples: &TripleRule<'_>,
    ) -> Result<Pruned, StorageError> {
        self.guarded(|| {
            if self.key_share_attempt(epoch)?.is_none() {
                return Err(StorageError::NoShareOfEpoch(epoch));
            }
            let txn = self.db.begin_write().map_err(db_error)?;
            let pruned = Pruned {
                key_shares: remove_key_shares(&txn, |e| e != epoch)?,
                presignatures: self.remove_presignatures(&txn, |e| e != epoch)?,
                triples: self.remove_triples(&txn, |t| !triples.keeps(t))?,
            };
            txn.commit().map_err(db_error)?;
            Ok(pruned)
        })
    }

    /// Removes every key share, presignature and triple: this node has left the network, and
    /// a removed participant's shares must end with its epoch.
    pub fn forget_key_material(&self) -> Result<Pruned, StorageError> {
        self.guarded(|| {
            let txn = self.db.begin_write().map_err(db_error)?;
            let pruned = Pruned {
                key_shares: remove_key_shares(&txn, |_| true)?,
                presignatures: self.remove_presignatures(&txn, |_| true)?,
                triples: self.remove_triples(&txn, |_| true)?,
            };
            txn.commit().map_err(db_error)?;
            Ok(pruned)
        })
    }

    pub(super) fn remove_presignatures(
        &self,
        txn: &WriteTransaction,
        remove: impl Fn(u64) -> bool,
    ) -> Result<usize, StorageError> {
        let mut table = txn.open_table(PRESIGNATURES).map_err(db_error)?;
        let mut doomed = Vec::new();
        for entry in table.iter().map_err(db_error)? {
            let (key, sealed) = entry.map_err(db_error)?;
            let (owner, id) = key.value();
            let at = Place::Asset(PRESIGNATURE.name, ParticipantId(owner), id);
            // A record that does not open can never be used: it goes too.
            let record = self.unseal::<EpochPresignature>(at, sealed.value());
            if record.is_err() || record.is_ok_and(|r| remove(r.epoch)) {
                doomed.push((owner, id));
            }
        }
        for key in &doomed {
            table.remove(key).map_err(db_error)?;
        }
        Ok(doomed.len())
    }

    fn remove_triples(
        &self,
        txn: &WriteTransaction,
        remove: impl Fn(&Triple) -> bool,
    ) -> Result<usize, StorageError> {
        let mut table = txn.open_table(TRIPLES).map_err(db_error)?;
        let mut doomed = Vec::new();
        for entry in table.iter().map_err(db_error)? {
            let (key, sealed) = entry.map_err(db_error)?;
            let (owner, id) = key.value();
            let at = Place::Asset(TRIPLE.name, ParticipantId(owner), id);
            let triple = self.unseal::<Triple>(at, sealed.value());
            if triple.as_ref().map_or(true, &remove) {
                doomed.push((owner, id));
            }
        }
        for key in &doomed {
            table.remove(key).map_err(db_error)?;
        }
        Ok(doomed.len())
    }
}

fn remove_key_shares(
    txn: &WriteTransaction,
    remove: impl Fn(u64) -> bool,
) -> Result<usize, StorageError> {
    let mut shares = txn.open_table(KEY_SHARES).map_err(db_error)?;
    let mut attempts = txn.open_table(KEY_ATTEMPTS).map_err(db_error)?;
    let mut doomed = Vec::new();
    for entry in shares.iter().map_err(db_error)? {
        let epoch = entry.map_err(db_error)?.0.value();
        if remove(epoch) {
            doomed.push(epoch);
        }
    }
    for epoch in &doomed {
        shares.remove(epoch).map_err(db_error)?;
        attempts.remove(epoch).map_err(db_error)?;
    }
    Ok(doomed.len())
}
