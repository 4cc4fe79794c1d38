//! Persistence in `redb`: the world state, blocks, transactions and execution outcomes.
//!
//! Every block is written in one write transaction (state changes, the block itself, the
//! transactions it included and the outcomes it produced), so a crash loses at most the block
//! that was being produced.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::DevnetError;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const BLOCK_HASHES: TableDefinition<&[u8], u64> = TableDefinition::new("block_hashes");
const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("transactions");
const OUTCOMES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outcomes");
const RECEIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("receipts");
/// Receipt id → the transaction it descends from (for `EXPERIMENTAL_receipt_to_tx`).
const RECEIPT_TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("receipt_txs");
/// Height → what undoes that block's state changes (borsh `Vec<(key, Option<old value>)>`),
/// for the last few blocks only: queries at `final` read the state before them.
const UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("undo");

/// Key in [`META`] holding the height of the last committed block.
pub const META_HEAD: &str = "head";
/// Key in [`META`] holding the genesis description (JSON).
pub const META_GENESIS: &str = "genesis";

/// Everything one block writes.
#[derive(Default)]
pub struct BlockWrite {
    pub height: u64,
    pub hash: [u8; 32],
    pub block: Vec<u8>,
    pub state_changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub txs: Vec<([u8; 32], Vec<u8>)>,
    pub outcomes: Vec<([u8; 32], Vec<u8>)>,
    pub receipts: Vec<([u8; 32], Vec<u8>)>,
    pub receipt_txs: Vec<([u8; 32], Vec<u8>)>,
    /// What undoes this block's state changes (see [`UNDO`]).
    pub undo: Vec<u8>,
    /// Undo records below this height are deleted.
    pub keep_undo_from: u64,
}

pub struct Store {
    db: Database,
}

fn db_err(e: impl Into<redb::Error>) -> DevnetError {
    DevnetError::Store(e.into().to_string())
}

impl Store {
    /// Creates a new, empty database file. Fails if the file exists.
    pub fn create(path: &Path) -> Result<Self, DevnetError> {
        if path.exists() {
            return Err(DevnetError::Home(format!(
                "{} already exists",
                path.display()
            )));
        }
        let db = Database::create(path).map_err(db_err)?;
        let store = Store { db };
        // Create every table so that readers never meet a missing one.
        let txn = store.db.begin_write().map_err(db_err)?;
        {
            txn.open_table(META).map_err(db_err)?;
            txn.open_table(STATE).map_err(db_err)?;
            txn.open_table(BLOCKS).map_err(db_err)?;
            txn.open_table(BLOCK_HASHES).map_err(db_err)?;
            txn.open_table(TXS).map_err(db_err)?;
            txn.open_table(OUTCOMES).map_err(db_err)?;
            txn.open_table(RECEIPTS).map_err(db_err)?;
            txn.open_table(RECEIPT_TXS).map_err(db_err)?;
            txn.open_table(UNDO).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(store)
    }

    /// Opens an existing database file.
    pub fn open(path: &Path) -> Result<Self, DevnetError> {
        if !path.is_file() {
            return Err(DevnetError::Home(format!(
                "chain database {} is missing",
                path.display()
            )));
        }
        let db = Database::open(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => DevnetError::Home(format!(
                "chain database {} is in use by another devnet",
                path.display()
            )),
            e => DevnetError::Home(format!(
                "chain database {} is unreadable: {e}",
                path.display()
            )),
        })?;
        Ok(Store { db })
    }

    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), DevnetError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(META)
            .map_err(db_err)?
            .insert(key, value)
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, DevnetError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(META).map_err(db_err)?;
        Ok(table.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Loads the whole world state (the devnet keeps it in memory).
    pub fn load_state(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, DevnetError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(STATE).map_err(db_err)?;
        let mut out = BTreeMap::new();
        for item in table.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.insert(k.value().to_vec(), v.value().to_vec());
        }
        Ok(out)
    }

    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>, DevnetError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(BLOCKS).map_err(db_err)?;
        Ok(table
            .get(height)
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    pub fn height_by_hash(&self, hash: &[u8; 32]) -> Result<Option<u64>, DevnetError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(BLOCK_HASHES).map_err(db_err)?;
        Ok(table.get(&hash[..]).map_err(db_err)?.map(|v| v.value()))
    }

    fn get_bytes(
        &self,
        def: TableDefinition<&[u8], &[u8]>,
        key: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, DevnetError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = match txn.open_table(def) {
            Ok(t) => t,
            // A table added after this database was created: nothing in it yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        Ok(table
            .get(&key[..])
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    /// The undo record of the block at `height`, if kept.
    pub fn undo(&self, height: u64) -> Result<Option<Vec<u8>>, DevnetError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = match txn.open_table(UNDO) {
            Ok(t) => t,
            // A database from before undo records were kept.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        Ok(table
            .get(height)
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    pub fn tx(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, DevnetError> {
        self.get_bytes(TXS, hash)
    }

    pub fn outcome(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, DevnetError> {
        self.get_bytes(OUTCOMES, id)
    }

    pub fn receipt(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, DevnetError> {
        self.get_bytes(RECEIPTS, id)
    }

    pub fn receipt_tx(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, DevnetError> {
        self.get_bytes(RECEIPT_TXS, id)
    }

    /// Commits one block atomically.
    pub fn commit_block(&self, w: &BlockWrite) -> Result<(), DevnetError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut state = txn.open_table(STATE).map_err(db_err)?;
            for (k, v) in &w.state_changes {
                match v {
                    Some(v) => {
                        state.insert(&k[..], &v[..]).map_err(db_err)?;
                    }
                    None => {
                        state.remove(&k[..]).map_err(db_err)?;
                    }
                }
            }
            let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
            blocks.insert(w.height, &w.block[..]).map_err(db_err)?;
            let mut hashes = txn.open_table(BLOCK_HASHES).map_err(db_err)?;
            hashes.insert(&w.hash[..], w.height).map_err(db_err)?;
            let mut txs = txn.open_table(TXS).map_err(db_err)?;
            for (k, v) in &w.txs {
                txs.insert(&k[..], &v[..]).map_err(db_err)?;
            }
            let mut outcomes = txn.open_table(OUTCOMES).map_err(db_err)?;
            for (k, v) in &w.outcomes {
                outcomes.insert(&k[..], &v[..]).map_err(db_err)?;
            }
            let mut receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
            for (k, v) in &w.receipts {
                receipts.insert(&k[..], &v[..]).map_err(db_err)?;
            }
            let mut receipt_txs = txn.open_table(RECEIPT_TXS).map_err(db_err)?;
            for (k, v) in &w.receipt_txs {
                receipt_txs.insert(&k[..], &v[..]).map_err(db_err)?;
            }
            let mut undo = txn.open_table(UNDO).map_err(db_err)?;
            if w.keep_undo_from <= w.height {
                undo.insert(w.height, &w.undo[..]).map_err(db_err)?;
            }
            // A handful of entries: the last `final_lag` blocks.
            let keep = w.keep_undo_from;
            undo.retain(|height, _| height >= keep).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            meta.insert(META_HEAD, &w.height.to_le_bytes()[..])
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }
}
