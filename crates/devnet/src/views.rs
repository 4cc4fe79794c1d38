//! nearcore view types built from the devnet's records.

use near_crypto::{KeyType, Signature};
use near_primitives::account::Account;
use near_primitives::hash::CryptoHash;
use near_primitives::types::{Balance, Gas, ShardId};
use near_primitives::views::{
    AccountView, BlockHeaderView, BlockView, ChunkHeaderView, ChunkView, CurrentEpochValidatorInfo,
    EpochValidatorInfo,
};
use near_primitives_core::account::AccountContract;

use crate::chain::{BlockRecord, Chain};
use crate::error::DevnetError;
use crate::runtime::{GAS_PRICE, PROTOCOL_VERSION};
use crate::state::AccountRecord;

/// Gas limit reported for the devnet's one chunk.
pub const CHUNK_GAS_LIMIT: u64 = 1_000_000_000_000_000;

pub fn account_view(a: &AccountRecord) -> AccountView {
    let account = Account::new(
        Balance::from_yoctonear(a.amount),
        Balance::from_yoctonear(a.locked),
        AccountContract::from_local_code_hash(a.code_hash),
        a.storage_usage,
    );
    AccountView::from(&account)
}

fn chunk_header(b: &BlockRecord) -> ChunkHeaderView {
    ChunkHeaderView {
        // The devnet has one chunk per block; its hash is the block hash.
        chunk_hash: b.hash,
        prev_block_hash: b.prev_hash,
        outcome_root: CryptoHash::default(),
        prev_state_root: CryptoHash::default(),
        encoded_merkle_root: CryptoHash::default(),
        encoded_length: 0,
        height_created: b.height,
        height_included: b.height,
        shard_id: ShardId::new(0),
        gas_used: Gas::from_gas(b.gas_used),
        gas_limit: Gas::from_gas(CHUNK_GAS_LIMIT),
        rent_paid: Balance::ZERO,
        validator_reward: Balance::ZERO,
        balance_burnt: Balance::from_yoctonear(b.tokens_burnt),
        outgoing_receipts_root: CryptoHash::default(),
        tx_root: CryptoHash::default(),
        validator_proposals: vec![],
        congestion_info: None,
        bandwidth_requests: None,
        proposed_split: None,
        signature: Signature::empty(KeyType::ED25519),
    }
}

pub fn block_view(chain: &Chain, b: &BlockRecord) -> BlockView {
    // What was final (and doomslug-final) when this block was made.
    let lag = chain.final_lag();
    let hash_below = |n: u64| match n {
        0 => b.hash,
        n => chain
            .block_by_height(b.height.saturating_sub(n))
            .ok()
            .flatten()
            .map_or(b.hash, |f| f.hash),
    };
    let header = BlockHeaderView {
        height: b.height,
        prev_height: b.height.checked_sub(1),
        hash: b.hash,
        prev_hash: b.prev_hash,
        timestamp: b.timestamp_ns,
        timestamp_nanosec: b.timestamp_ns,
        random_value: b.random_value,
        chunks_included: 1,
        chunk_mask: vec![true],
        gas_price: Balance::from_yoctonear(GAS_PRICE),
        block_ordinal: Some(b.height + 1),
        total_supply: Balance::from_yoctonear(crate::genesis::ROOT_BALANCE),
        last_final_block: hash_below(lag),
        last_ds_final_block: hash_below(lag.min(1)),
        latest_protocol_version: PROTOCOL_VERSION,
        signature: Signature::empty(KeyType::ED25519),
        ..Default::default()
    };
    BlockView {
        author: chain.genesis.root_account_id.clone(),
        header,
        chunks: vec![chunk_header(b)],
    }
}

pub fn chunk_view(chain: &Chain, b: &BlockRecord) -> Result<ChunkView, DevnetError> {
    let mut transactions = Vec::with_capacity(b.tx_hashes.len());
    for h in &b.tx_hashes {
        if let Some(rec) = chain.tx_record(h)? {
            transactions.push(rec.tx.into());
        }
    }
    let mut receipts = Vec::with_capacity(b.receipt_ids.len());
    for id in &b.receipt_ids {
        if let Some(r) = chain.receipt(id)? {
            receipts.push(r.to_view());
        }
    }
    Ok(ChunkView {
        author: chain.genesis.root_account_id.clone(),
        header: chunk_header(b),
        transactions,
        receipts,
    })
}

pub fn validators_view(chain: &Chain) -> EpochValidatorInfo {
    let height = chain.head().height;
    EpochValidatorInfo {
        current_validators: vec![CurrentEpochValidatorInfo {
            account_id: chain.genesis.root_account_id.clone(),
            public_key: chain.genesis.root_public_key.clone(),
            is_slashed: false,
            stake: Balance::ZERO,
            shards_produced: vec![ShardId::new(0)],
            num_produced_blocks: height,
            num_expected_blocks: height,
            num_produced_chunks: height,
            num_expected_chunks: height,
            num_produced_chunks_per_shard: vec![height],
            num_expected_chunks_per_shard: vec![height],
            num_produced_endorsements: 0,
            num_expected_endorsements: 0,
            num_produced_endorsements_per_shard: vec![],
            num_expected_endorsements_per_shard: vec![],
            shards_endorsed: vec![],
        }],
        next_validators: vec![],
        current_fishermen: vec![],
        next_fishermen: vec![],
        current_proposals: vec![],
        prev_epoch_kickout: vec![],
        epoch_start_height: 0,
        epoch_height: 1,
        validator_reward_paid_prev_epoch: Default::default(),
    }
}
