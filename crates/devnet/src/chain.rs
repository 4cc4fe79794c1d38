//! The chain: genesis and resume, the transaction pool, block production and transaction
//! results.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use borsh::{BorshDeserialize, BorshSerialize};
use near_primitives::account::{AccessKey, AccessKeyPermission};
use near_primitives::errors::InvalidTxError;
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{AccountId, Finality};
use near_primitives::views::{
    ExecutionOutcomeView, ExecutionOutcomeWithIdView, ExecutionStatusView,
    FinalExecutionOutcomeView, FinalExecutionStatus, ReceiptView,
};

use crate::error::DevnetError;
use crate::genesis::{new_genesis, write_genesis, Genesis, Home};
use crate::receipt::{Receipt, ReceiptBody};
use crate::runtime::{ApplyOutput, BlockContext, Runtime, VerifiedTx};
use crate::state::{AccountRecord, Changes, State, COL_NEXT_RECEIPTS};
use crate::store::{BlockWrite, Store, META_GENESIS, META_HEAD};

/// A block as the devnet stores it.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct BlockRecord {
    pub height: u64,
    pub hash: CryptoHash,
    pub prev_hash: CryptoHash,
    pub timestamp_ns: u64,
    pub random_value: CryptoHash,
    pub tx_hashes: Vec<CryptoHash>,
    /// Receipts executed in this block (action receipts, in order).
    pub receipt_ids: Vec<CryptoHash>,
    pub gas_used: u64,
    pub tokens_burnt: u128,
}

impl BlockRecord {
    /// What a contract sees of this block.
    pub fn context(&self) -> BlockContext {
        BlockContext {
            height: self.height,
            timestamp_ns: self.timestamp_ns,
            random_seed: self.random_value,
        }
    }
}

/// A transaction as stored: the signed transaction and the block that included it.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct TxRecord {
    pub tx: SignedTransaction,
    pub height: u64,
    pub block_hash: CryptoHash,
}

/// The transaction a receipt descends from.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct TxOrigin {
    pub tx_hash: CryptoHash,
    pub sender: AccountId,
}

/// Where a transaction stands.
pub enum TxState {
    /// Not seen (or rejected when its block was made).
    Unknown,
    Rejected(InvalidTxError),
    /// In the pool, waiting for the next block.
    Pending,
    /// Included; `complete` once every receipt it caused has an outcome.
    Included {
        outcome: Box<FinalExecutionOutcomeView>,
        receipts: Vec<ReceiptView>,
        complete: bool,
        /// The block that included the transaction.
        included_height: u64,
        /// The highest block holding one of its outcomes so far.
        last_height: u64,
    },
}

/// How many blocks a transaction's block hash stays valid (nearcore's default).
pub const TX_VALIDITY_PERIOD: u64 = 86_400;
/// Rejections remembered for `tx` queries after `broadcast_tx_async`.
const MAX_REJECTED: usize = 100_000;
/// Transactions waiting for a block.
const MAX_POOL: usize = 100_000;

fn ordered_float_one() -> ordered_float::NotNan<f64> {
    ordered_float::NotNan::new(1.0).unwrap_or_default()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn corrupt(what: &str) -> DevnetError {
    DevnetError::Corrupt(what.to_string())
}

pub struct Chain {
    pub genesis: Genesis,
    pub genesis_hash: CryptoHash,
    store: Store,
    pub state: State,
    pub runtime: Runtime,
    head: BlockRecord,
    pool: Vec<VerifiedTx>,
    pool_hashes: HashSet<CryptoHash>,
    rejected: HashMap<CryptoHash, InvalidTxError>,
    /// Origins of the receipts the last block made (saves store reads).
    recent_origins: HashMap<CryptoHash, TxOrigin>,
    /// How many blocks `final` lags the head (see [`Chain::final_height`]).
    final_lag: u64,
    /// What undoes each of the last blocks' state changes, oldest first, ending at the head:
    /// the state as of a block in the last `final_lag` can be read (kept in the store too).
    undo: VecDeque<(u64, Changes)>,
}

impl Chain {
    /// Opens the chain in `home`, creating a new one when the directory is absent or empty.
    /// `final` will lag the head by `final_lag` blocks.
    pub fn open_or_init(home: &Home, chain_id: &str, final_lag: u64) -> Result<Self, DevnetError> {
        if home.is_fresh()? {
            Self::init(home, chain_id, final_lag)
        } else {
            Self::open(home, final_lag)
        }
    }

    /// Creates a new chain in an absent or empty `home`.
    pub fn init(home: &Home, chain_id: &str, final_lag: u64) -> Result<Self, DevnetError> {
        if !home.is_fresh()? {
            return Err(DevnetError::Home(format!(
                "{} is not empty",
                home.dir.display()
            )));
        }
        let root: AccountId = "test.near"
            .parse()
            .map_err(|_| corrupt("root account id"))?;
        let (genesis, secret) = new_genesis(chain_id, &root, now_ns());
        std::fs::create_dir_all(home.data_dir())?;
        home.write_key(&root, &secret)?;
        let store = Store::create(&home.db_path())?;
        let genesis_json =
            serde_json::to_vec(&genesis).map_err(|e| DevnetError::Home(e.to_string()))?;
        store.put_meta(META_GENESIS, &genesis_json)?;

        let runtime = Runtime::new(&home.data_dir(), genesis.chain_id.clone())?;
        let mut state = State::default();
        let ak = AccessKey {
            nonce: 0,
            permission: AccessKeyPermission::FullAccess,
        };
        let account = AccountRecord {
            amount: genesis.root_balance()?,
            locked: 0,
            code_hash: CryptoHash::default(),
            storage_usage: runtime.new_account_storage()
                + runtime.access_key_storage(&genesis.root_public_key, &ak),
        };
        state.set_account(&root, &account);
        state.set_access_key(&root, &genesis.root_public_key, &ak);
        let changes = state.finish_block();
        let genesis_hash = hash(&genesis_json);
        let block = BlockRecord {
            height: 0,
            hash: genesis_hash,
            prev_hash: CryptoHash::default(),
            timestamp_ns: genesis.genesis_time_ns,
            random_value: hash(genesis_hash.as_ref()),
            tx_hashes: vec![],
            receipt_ids: vec![],
            gas_used: 0,
            tokens_burnt: 0,
        };
        store.commit_block(&BlockWrite {
            height: 0,
            hash: genesis_hash.0,
            block: borsh::to_vec(&block).map_err(|e| corrupt(&e.to_string()))?,
            state_changes: changes,
            ..Default::default()
        })?;
        // genesis.json last: its presence marks a complete home.
        write_genesis(home, &genesis)?;
        tracing::info!(home = %home.dir.display(), chain_id, "created a new devnet chain");
        Ok(Chain {
            genesis,
            genesis_hash,
            store,
            state,
            runtime,
            head: block,
            pool: vec![],
            pool_hashes: HashSet::new(),
            rejected: HashMap::new(),
            recent_origins: HashMap::new(),
            final_lag,
            undo: VecDeque::new(),
        })
    }

    /// Opens an existing chain; any missing or damaged part is an error.
    pub fn open(home: &Home, final_lag: u64) -> Result<Self, DevnetError> {
        let genesis = home.read_genesis()?;
        let store = Store::open(&home.db_path())?;
        let stored = store
            .get_meta(META_GENESIS)?
            .ok_or_else(|| DevnetError::Home("chain database has no genesis".into()))?;
        let stored_genesis: Genesis = serde_json::from_slice(&stored)
            .map_err(|e| DevnetError::Home(format!("stored genesis is corrupt: {e}")))?;
        if stored_genesis != genesis {
            return Err(DevnetError::Home(
                "genesis.json does not match the chain database".into(),
            ));
        }
        let head_bytes = store
            .get_meta(META_HEAD)?
            .ok_or_else(|| DevnetError::Home("chain database has no head block".into()))?;
        let head_height = u64::from_le_bytes(
            head_bytes
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("head height"))?,
        );
        let head = store
            .block(head_height)?
            .ok_or_else(|| corrupt("head block missing"))
            .and_then(|b| BlockRecord::try_from_slice(&b).map_err(|_| corrupt("head block")))?;
        let genesis_hash = hash(&stored);
        let state = State::new(store.load_state()?);
        let runtime = Runtime::new(&home.data_dir(), genesis.chain_id.clone())?;
        // The undo records of the last blocks, newest first, as far as they go back unbroken
        // (a database from before they were kept, or a larger lag than last time, has fewer).
        let mut undo = VecDeque::new();
        let mut height = head.height;
        while height > 0 && (undo.len() as u64) < final_lag {
            let Some(bytes) = store.undo(height)? else {
                break;
            };
            let changes = Changes::try_from_slice(&bytes).map_err(|_| corrupt("undo record"))?;
            undo.push_front((height, changes));
            height -= 1;
        }
        tracing::info!(home = %home.dir.display(), height = head.height, "resumed devnet chain");
        Ok(Chain {
            genesis,
            genesis_hash,
            store,
            state,
            runtime,
            head,
            pool: vec![],
            pool_hashes: HashSet::new(),
            rejected: HashMap::new(),
            recent_origins: HashMap::new(),
            final_lag,
            undo,
        })
    }

    /// How many blocks `final` lags the head.
    pub fn final_lag(&self) -> u64 {
        self.final_lag
    }

    /// The height of the last final block: `final_lag` blocks below the head (NEAR's blocks
    /// are final about two blocks after they are made).
    pub fn final_height(&self) -> u64 {
        self.head.height.saturating_sub(self.final_lag)
    }

    /// The height of the block at `finality`: `optimistic` is the head, `near-final` (doomslug)
    /// one block below it (never below `final`), `final` [`Chain::final_height`].
    pub fn finality_height(&self, finality: &Finality) -> u64 {
        let lag = match finality {
            Finality::None => 0,
            Finality::DoomSlug => self.final_lag.min(1),
            Finality::Final => self.final_lag,
        };
        self.head.height.saturating_sub(lag)
    }

    /// The block at `finality`.
    pub fn block_at_finality(&self, finality: &Finality) -> Result<BlockRecord, DevnetError> {
        let height = self.finality_height(finality);
        self.block_by_height(height)?
            .ok_or_else(|| corrupt("a block below the head is missing"))
    }

    /// What takes the latest state back to the state as of block `height` (see
    /// [`State::rewound`]): empty at the head, `None` when the blocks after `height` are
    /// older than the undo records kept (the last `final_lag` blocks).
    pub fn undo_to(&self, height: u64) -> Option<Changes> {
        let mut merged = Changes::new();
        if height >= self.head.height {
            return Some(merged);
        }
        let oldest = self.head.height - self.undo.len() as u64;
        if height < oldest {
            return None;
        }
        // Newest first, so that the oldest block's "before" value of a key is the one kept.
        for (h, changes) in self.undo.iter().rev() {
            if *h <= height {
                break;
            }
            for (k, v) in changes {
                merged.insert(k.clone(), v.clone());
            }
        }
        Some(merged)
    }

    pub fn head(&self) -> &BlockRecord {
        &self.head
    }

    pub fn block_by_height(&self, height: u64) -> Result<Option<BlockRecord>, DevnetError> {
        if height == self.head.height {
            return Ok(Some(self.head.clone()));
        }
        match self.store.block(height)? {
            Some(b) => Ok(Some(
                BlockRecord::try_from_slice(&b).map_err(|_| corrupt("block"))?,
            )),
            None => Ok(None),
        }
    }

    pub fn block_by_hash(&self, h: &CryptoHash) -> Result<Option<BlockRecord>, DevnetError> {
        match self.store.height_by_hash(&h.0)? {
            Some(height) => self.block_by_height(height),
            None => Ok(None),
        }
    }

    pub fn context(&self) -> BlockContext {
        self.head.context()
    }

    /// Checks a transaction and puts it in the pool for the next block.
    pub fn submit(&mut self, tx: SignedTransaction) -> Result<CryptoHash, InvalidTxError> {
        self.submit_verified(VerifiedTx::new(tx)?)
    }

    /// [`Chain::submit`] for a transaction whose signature was checked already.
    pub fn submit_verified(&mut self, tx: VerifiedTx) -> Result<CryptoHash, InvalidTxError> {
        let h = tx.get().get_hash();
        if self.pool_hashes.contains(&h) || matches!(self.store.tx(&h.0), Ok(Some(_))) {
            return Ok(h);
        }
        // As on NEAR: the transaction names a known block at most
        // `TX_VALIDITY_PERIOD` blocks old.
        match self
            .store
            .height_by_hash(&tx.get().transaction.block_hash().0)
        {
            Ok(Some(height)) if self.head.height.saturating_sub(height) <= TX_VALIDITY_PERIOD => {}
            _ => return Err(InvalidTxError::Expired),
        }
        if self.pool.len() >= MAX_POOL {
            return Err(InvalidTxError::ShardCongested {
                shard_id: 0,
                congestion_level: ordered_float_one(),
            });
        }
        self.runtime
            .validate_tx(&self.state, &tx, self.head.height + 1)?;
        self.rejected.remove(&h);
        self.pool_hashes.insert(h);
        self.pool.push(tx);
        Ok(h)
    }

    /// Records a transaction refused on submission (`broadcast_tx_async` reports it later).
    pub fn reject(&mut self, h: CryptoHash, e: InvalidTxError) {
        if self.rejected.len() >= MAX_REJECTED {
            self.rejected.clear();
        }
        self.rejected.insert(h, e);
    }

    /// Makes the next block: transactions, yield timeouts, receipts; then commits it.
    pub fn produce_block(&mut self) -> Result<&BlockRecord, DevnetError> {
        let height = self.head.height + 1;
        let timestamp_ns = now_ns().max(self.head.timestamp_ns + 1);
        let mut seed = self.head.random_value.as_ref().to_vec();
        seed.extend_from_slice(&height.to_le_bytes());
        let random_value = hash(&seed);
        let ctx = BlockContext {
            height,
            timestamp_ns,
            random_seed: random_value,
        };

        let next_key = vec![COL_NEXT_RECEIPTS];
        let incoming: Vec<Receipt> = self.state.get_borsh(&next_key).unwrap_or_default();
        self.state.remove(&next_key);
        self.state.commit_receipt();

        let mut out = ApplyOutput::default();
        let mut queue: VecDeque<Receipt> = VecDeque::new();
        let mut included = Vec::new();
        let mut tx_outcomes = Vec::new();
        let mut stored_receipts = Vec::new();
        for tx in nonce_ordered(std::mem::take(&mut self.pool)) {
            let h = tx.get().get_hash();
            self.pool_hashes.remove(&h);
            match self.runtime.apply_tx(&mut self.state, &tx, &ctx) {
                Ok((receipt, outcome)) => {
                    tx_outcomes.push((h, outcome));
                    stored_receipts.push(receipt.clone());
                    if receipt.receiver_id == receipt.predecessor_id {
                        queue.push_back(receipt);
                    } else {
                        out.outgoing.push(receipt);
                    }
                    included.push(tx.into_inner());
                }
                Err(e) => {
                    tracing::debug!(tx = %h, error = ?e, "transaction dropped at block time");
                    self.reject(h, e);
                }
            }
        }
        queue.extend(incoming);
        let timeouts = self.runtime.expired_yields(&mut self.state, &ctx);
        queue.extend(timeouts);

        let mut executed = Vec::new();
        while let Some(r) = queue.pop_front() {
            if matches!(r.body, ReceiptBody::Action(_)) {
                executed.push(r.id);
            }
            self.runtime
                .apply_receipt(&mut self.state, r, &ctx, &mut out, &mut queue);
        }
        self.state.set_borsh(next_key, &out.outgoing);
        let (changes, undo) = self.state.finish_block_with_undo();

        let mut gas_used = 0u64;
        let mut tokens_burnt = 0u128;
        for (_, o) in tx_outcomes.iter().chain(out.outcomes.iter()) {
            gas_used = gas_used.saturating_add(o.gas_burnt.as_gas());
            tokens_burnt = tokens_burnt.saturating_add(o.tokens_burnt.as_yoctonear());
        }
        let tx_hashes: Vec<CryptoHash> = included.iter().map(|t| t.get_hash()).collect();
        let mut header = self.head.hash.as_ref().to_vec();
        header.extend_from_slice(&height.to_le_bytes());
        header.extend_from_slice(&timestamp_ns.to_le_bytes());
        header.extend_from_slice(random_value.as_ref());
        for h in tx_hashes.iter().chain(executed.iter()) {
            header.extend_from_slice(h.as_ref());
        }
        let block_hash = hash(&header);
        let block = BlockRecord {
            height,
            hash: block_hash,
            prev_hash: self.head.hash,
            timestamp_ns,
            random_value,
            tx_hashes,
            receipt_ids: executed,
            gas_used,
            tokens_burnt,
        };
        let enc = |v: &dyn Fn() -> Result<Vec<u8>, std::io::Error>| {
            v().map_err(|e| DevnetError::Corrupt(e.to_string()))
        };
        let mut write = BlockWrite {
            height,
            hash: block_hash.0,
            block: enc(&|| borsh::to_vec(&block))?,
            state_changes: changes,
            undo: if self.final_lag > 0 {
                enc(&|| borsh::to_vec(&undo))?
            } else {
                Vec::new()
            },
            keep_undo_from: (height + 1).saturating_sub(self.final_lag),
            ..Default::default()
        };
        for tx in included {
            let rec = TxRecord {
                tx,
                height,
                block_hash,
            };
            write
                .txs
                .push((rec.tx.get_hash().0, enc(&|| borsh::to_vec(&rec))?));
        }
        let tx_origin_outcomes: Vec<(CryptoHash, ExecutionOutcomeView)> = tx_outcomes.clone();
        let receipt_origin_outcomes: Vec<(CryptoHash, ExecutionOutcomeView)> = out.outcomes.clone();
        for (id, outcome) in tx_outcomes.into_iter().chain(out.outcomes) {
            let view = ExecutionOutcomeWithIdView {
                proof: vec![],
                block_hash,
                id,
                outcome,
            };
            write.outcomes.push((id.0, enc(&|| borsh::to_vec(&view))?));
        }
        for r in stored_receipts.iter().chain(out.created.iter()) {
            write.receipts.push((r.id.0, enc(&|| borsh::to_vec(r))?));
        }
        // Which transaction every new receipt descends from: parents run before children,
        // and parents of earlier blocks are in the store.
        let mut origins: HashMap<CryptoHash, TxOrigin> = HashMap::new();
        for (h, o) in &tx_origin_outcomes {
            for id in &o.receipt_ids {
                origins.insert(
                    *id,
                    TxOrigin {
                        tx_hash: *h,
                        sender: o.executor_id.clone(),
                    },
                );
            }
        }
        for (id, o) in &receipt_origin_outcomes {
            let parent = match origins.get(id).or_else(|| self.recent_origins.get(id)) {
                Some(p) => Some(p.clone()),
                None => self.receipt_origin(id)?,
            };
            if let Some(p) = parent {
                for child in &o.receipt_ids {
                    origins.insert(*child, p.clone());
                }
            }
        }
        for (id, origin) in &origins {
            write
                .receipt_txs
                .push((id.0, enc(&|| borsh::to_vec(origin))?));
        }
        // Most receipts run in the block after the one that made them.
        self.recent_origins = origins;
        self.store.commit_block(&write)?;
        tracing::debug!(
            height,
            txs = block.tx_hashes.len(),
            receipts = block.receipt_ids.len(),
            gas = block.gas_used,
            "block committed"
        );
        self.head = block;
        if self.final_lag > 0 {
            self.undo.push_back((height, undo));
        }
        while self.undo.len() as u64 > self.final_lag {
            self.undo.pop_front();
        }
        Ok(&self.head)
    }

    fn outcome(&self, id: &CryptoHash) -> Result<Option<ExecutionOutcomeWithIdView>, DevnetError> {
        match self.store.outcome(&id.0)? {
            Some(b) => Ok(Some(
                ExecutionOutcomeWithIdView::try_from_slice(&b).map_err(|_| corrupt("outcome"))?,
            )),
            None => Ok(None),
        }
    }

    pub fn tx_record(&self, h: &CryptoHash) -> Result<Option<TxRecord>, DevnetError> {
        match self.store.tx(&h.0)? {
            Some(b) => Ok(Some(
                TxRecord::try_from_slice(&b).map_err(|_| corrupt("tx"))?,
            )),
            None => Ok(None),
        }
    }

    /// The transaction `id` descends from.
    pub fn receipt_origin(&self, id: &CryptoHash) -> Result<Option<TxOrigin>, DevnetError> {
        match self.store.receipt_tx(&id.0)? {
            Some(b) => Ok(Some(
                TxOrigin::try_from_slice(&b).map_err(|_| corrupt("receipt origin"))?,
            )),
            None => Ok(None),
        }
    }

    pub fn receipt(&self, id: &CryptoHash) -> Result<Option<Receipt>, DevnetError> {
        match self.store.receipt(&id.0)? {
            Some(b) => Ok(Some(
                Receipt::try_from_slice(&b).map_err(|_| corrupt("receipt"))?,
            )),
            None => Ok(None),
        }
    }

    /// The state of a transaction and, once included, its outcomes so far.
    pub fn tx_state(&self, h: &CryptoHash) -> Result<TxState, DevnetError> {
        let Some(rec) = self.tx_record(h)? else {
            if self.pool_hashes.contains(h) {
                return Ok(TxState::Pending);
            }
            if let Some(e) = self.rejected.get(h) {
                return Ok(TxState::Rejected(e.clone()));
            }
            return Ok(TxState::Unknown);
        };
        let tx_outcome = self
            .outcome(h)?
            .ok_or_else(|| corrupt("transaction outcome missing"))?;
        let mut receipts_outcome = Vec::new();
        let mut receipts = Vec::new();
        let mut complete = true;
        let mut stack: Vec<CryptoHash> = tx_outcome
            .outcome
            .receipt_ids
            .iter()
            .rev()
            .copied()
            .collect();
        let mut seen = HashSet::new();
        let mut last_height = rec.height;
        let mut heights: HashMap<CryptoHash, u64> = HashMap::new();
        heights.insert(rec.block_hash, rec.height);
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(r) = self.receipt(&id)? {
                receipts.push(r.to_view());
            }
            match self.outcome(&id)? {
                Some(o) => {
                    let height = match heights.get(&o.block_hash) {
                        Some(h) => *h,
                        None => {
                            let h = self
                                .store
                                .height_by_hash(&o.block_hash.0)?
                                .ok_or_else(|| corrupt("an outcome's block is missing"))?;
                            heights.insert(o.block_hash, h);
                            h
                        }
                    };
                    last_height = last_height.max(height);
                    stack.extend(o.outcome.receipt_ids.iter().rev().copied());
                    receipts_outcome.push(o);
                }
                None => complete = false,
            }
        }
        let by_id: HashMap<CryptoHash, &ExecutionOutcomeWithIdView> =
            receipts_outcome.iter().map(|o| (o.id, o)).collect();
        let mut status = tx_outcome.outcome.status.clone();
        let final_status = loop {
            match status {
                ExecutionStatusView::SuccessReceiptId(id) => match by_id.get(&id) {
                    Some(o) => status = o.outcome.status.clone(),
                    None => break FinalExecutionStatus::Started,
                },
                ExecutionStatusView::SuccessValue(v) => {
                    break FinalExecutionStatus::SuccessValue(v)
                }
                ExecutionStatusView::Failure(e) => break FinalExecutionStatus::Failure(e),
                ExecutionStatusView::Unknown => break FinalExecutionStatus::Started,
            }
        };
        let outcome = FinalExecutionOutcomeView {
            status: final_status,
            transaction: rec.tx.clone().into(),
            transaction_outcome: tx_outcome,
            receipts_outcome,
        };
        Ok(TxState::Included {
            outcome: Box::new(outcome),
            receipts,
            complete,
            included_height: rec.height,
            last_height,
        })
    }
}

/// The pool's transactions as a block takes them: each access key's transactions in nonce
/// order, in the places that key's transactions arrived in. nearcore's pool does the same, so
/// a client that sends several transactions from one key at once (each with the next nonce)
/// does not see them fail for arriving out of order.
fn nonce_ordered(pool: Vec<VerifiedTx>) -> Vec<VerifiedTx> {
    let key = |tx: &VerifiedTx| {
        let t = &tx.get().transaction;
        (t.signer_id().clone(), t.public_key().clone())
    };
    let mut places: HashMap<_, Vec<usize>> = HashMap::new();
    for (i, tx) in pool.iter().enumerate() {
        places.entry(key(tx)).or_default().push(i);
    }
    let mut slots: Vec<Option<VerifiedTx>> = pool.into_iter().map(Some).collect();
    let mut ordered: Vec<Option<VerifiedTx>> = (0..slots.len()).map(|_| None).collect();
    for positions in places.values() {
        let mut txs: Vec<VerifiedTx> = positions.iter().filter_map(|&i| slots[i].take()).collect();
        txs.sort_by_key(|tx| tx.get().transaction.nonce().nonce());
        for (&i, tx) in positions.iter().zip(txs) {
            ordered[i] = Some(tx);
        }
    }
    ordered.into_iter().flatten().collect()
}
