//! NEAR JSON-RPC over HTTP (axum), with nearcore's request and response shapes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::routing::{get, post};
use axum::{Json, Router};
use near_jsonrpc_primitives::errors::RpcError;
use near_jsonrpc_primitives::types::blocks::{RpcBlockError, RpcBlockRequest};
use near_jsonrpc_primitives::types::chunks::{ChunkReference, RpcChunkError};
use near_jsonrpc_primitives::types::query::{
    QueryResponseKind, RpcQueryError, RpcQueryRequest, RpcQueryResponse,
};
use near_jsonrpc_primitives::types::receipts::{
    RpcReceiptError, RpcReceiptRequest, RpcReceiptToTxError, RpcReceiptToTxRequest,
    RpcReceiptToTxResponse,
};
use near_jsonrpc_primitives::types::transactions::{
    RpcSendTransactionRequest, RpcTransactionError, RpcTransactionResponse,
    RpcTransactionStatusRequest, TransactionInfo,
};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{AccountId, BlockId, BlockReference, EpochId, SyncCheckpoint};
use near_primitives::views::{
    AccessKeyInfoView, AccessKeyList, AccessKeyView, CallResult, ContractCodeView,
    FinalExecutionOutcomeViewEnum, FinalExecutionOutcomeWithReceiptView, GasPriceView,
    QueryRequest, StateItem, StatusResponse, StatusSyncInfo, TxExecutionStatus, ValidatorInfo,
    ViewStateResult,
};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::chain::{BlockRecord, Chain, TxState};
use crate::runtime::{Runtime, VerifiedTx, ViewCallError, GAS_PRICE, PROTOCOL_VERSION};
use crate::state::{data_prefix, State};
use crate::views::{account_view, block_view, chunk_view, validators_view};

/// The largest JSON-RPC request accepted.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Shared by the RPC handlers.
pub struct RpcContext {
    pub chain: Arc<Mutex<Chain>>,
    pub heights: watch::Receiver<u64>,
    /// Announces new heights (blocks made by `sandbox_fast_forward`).
    pub height_tx: Arc<watch::Sender<u64>>,
    pub tx_timeout: Duration,
    pub started: Instant,
    pub rpc_addr: String,
}

pub fn router(ctx: Arc<RpcContext>) -> Router {
    Router::new()
        .route("/", post(handle))
        .route("/status", get(http_status))
        .route("/health", get(|| async { Json(json!({})) }))
        // Room for a 4 MB contract in a base64 transaction.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(ctx)
}

fn lock(chain: &Mutex<Chain>) -> MutexGuard<'_, Chain> {
    // A panic while holding the lock must not take the RPC down with it.
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

fn internal(msg: impl std::fmt::Display) -> RpcError {
    RpcError::new_internal_error(None, msg.to_string())
}

fn parse_error(msg: impl std::fmt::Display) -> RpcError {
    RpcError::parse_error(msg.to_string())
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::serialization_error(e.to_string()))
}

fn params<T: serde::de::DeserializeOwned>(p: Value) -> Result<T, RpcError> {
    serde_json::from_value(p).map_err(|e| parse_error(format!("Failed parsing args: {e}")))
}

async fn http_status(AxState(ctx): AxState<Arc<RpcContext>>) -> Json<Value> {
    Json(status(&ctx).unwrap_or_else(|e| json!({ "error": e })))
}

async fn handle(AxState(ctx): AxState<Arc<RpcContext>>, body: Bytes) -> Json<Value> {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = parse_error(format!("Invalid JSON: {e}"));
            return Json(json!({ "jsonrpc": "2.0", "id": Value::Null, "error": err }));
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let p = request.get("params").cloned().unwrap_or(Value::Null);
    let result = dispatch(&ctx, &method, p).await;
    Json(match result {
        Ok(v) => json!({ "jsonrpc": "2.0", "id": id, "result": v }),
        Err(e) => json!({ "jsonrpc": "2.0", "id": id, "error": e }),
    })
}

async fn dispatch(ctx: &RpcContext, method: &str, p: Value) -> Result<Value, RpcError> {
    match method {
        "status" => status(ctx),
        "health" => Ok(Value::Null),
        "block" => block(ctx, p),
        "chunk" => chunk(ctx, p),
        "query" => query(ctx, p),
        "gas_price" => to_value(&GasPriceView {
            gas_price: near_primitives::types::Balance::from_yoctonear(GAS_PRICE),
        }),
        "validators" => to_value(&validators_view(&lock(&ctx.chain))),
        "EXPERIMENTAL_protocol_config" => protocol_config(ctx),
        "sandbox_fast_forward" => fast_forward(ctx, p).await,
        "EXPERIMENTAL_receipt_to_tx" => {
            let req: RpcReceiptToTxRequest = params(p)?;
            let receipt_id = req.receipt_reference.receipt_id;
            match lock(&ctx.chain)
                .receipt_origin(&receipt_id)
                .map_err(internal)?
            {
                Some(o) => to_value(&RpcReceiptToTxResponse {
                    transaction_hash: o.tx_hash,
                    sender_account_id: o.sender,
                }),
                None => Err(RpcReceiptToTxError::UnknownReceipt { receipt_id }.into()),
            }
        }
        "EXPERIMENTAL_receipt" => {
            let req: RpcReceiptRequest = params(p)?;
            let receipt_id = req.receipt_reference.receipt_id;
            match lock(&ctx.chain).receipt(&receipt_id).map_err(internal)? {
                Some(r) => to_value(&r.to_view()),
                None => Err(RpcReceiptError::UnknownReceipt { receipt_id }.into()),
            }
        }
        "broadcast_tx_async" => {
            let tx = first_tx_param(p)?;
            let h = tx.get_hash();
            let result = VerifiedTx::new(tx);
            let mut chain = lock(&ctx.chain);
            if let Err(e) = result.and_then(|tx| chain.submit_verified(tx)) {
                chain.reject(h, e);
            }
            to_value(&h)
        }
        "broadcast_tx_commit" => {
            let tx = first_tx_param(p)?;
            let h = submit(ctx, tx)?;
            // NEAR: the legacy `broadcast_tx_commit` is `send_tx` with `EXECUTED_OPTIMISTIC`.
            let (outcome, _) = wait_tx(ctx, h, TxExecutionStatus::ExecutedOptimistic).await?;
            match outcome {
                Some(o) => to_value(&o.final_outcome),
                None => Err(internal("no outcome")),
            }
        }
        "send_tx" => {
            let req: RpcSendTransactionRequest = params(p)?;
            let wait = req.wait_until.clone();
            let h = submit(ctx, req.signed_transaction)?;
            tx_response(ctx, h, wait, false).await
        }
        "tx" | "EXPERIMENTAL_tx_status" => {
            let with_receipts = method == "EXPERIMENTAL_tx_status";
            let (h, wait) = tx_status_params(p)?;
            tx_response(ctx, h, wait, with_receipts).await
        }
        _ => Err(RpcError::method_not_found(method.to_string())),
    }
}

fn status(ctx: &RpcContext) -> Result<Value, RpcError> {
    let chain = lock(&ctx.chain);
    let head = chain.head().clone();
    let time = |ns: u64| {
        near_time::Utc::from_unix_timestamp_nanos(ns as i128).unwrap_or(near_time::Utc::UNIX_EPOCH)
    };
    let genesis = chain
        .block_by_height(0)
        .map_err(internal)?
        .unwrap_or_else(|| head.clone());
    let root = chain.genesis.root_account_id.clone();
    let response = StatusResponse {
        version: near_primitives::version::Version {
            version: env!("CARGO_PKG_VERSION").to_string(),
            build: "chainsig-devnet".to_string(),
            commit: String::new(),
            rustc_version: String::new(),
        },
        chain_id: chain.genesis.chain_id.clone(),
        protocol_version: PROTOCOL_VERSION,
        latest_protocol_version: PROTOCOL_VERSION,
        rpc_addr: Some(ctx.rpc_addr.clone()),
        validators: vec![ValidatorInfo {
            account_id: root.clone(),
        }],
        sync_info: StatusSyncInfo {
            latest_block_hash: head.hash,
            latest_block_height: head.height,
            latest_state_root: CryptoHash::default(),
            latest_block_time: time(head.timestamp_ns),
            syncing: false,
            earliest_block_hash: Some(genesis.hash),
            earliest_block_height: Some(genesis.height),
            earliest_block_time: Some(time(genesis.timestamp_ns)),
            epoch_id: Some(EpochId::default()),
            epoch_start_height: Some(0),
        },
        validator_account_id: Some(root),
        validator_public_key: Some(chain.genesis.root_public_key.clone()),
        node_public_key: chain.genesis.root_public_key.clone(),
        node_key: None,
        uptime_sec: ctx.started.elapsed().as_secs() as i64,
        genesis_hash: chain.genesis_hash,
        detailed_debug_status: None,
    };
    to_value(&response)
}

/// Most blocks one `sandbox_fast_forward` makes.
pub const MAX_FAST_FORWARD: u64 = 100_000;

#[derive(serde::Deserialize)]
struct FastForward {
    delta_height: u64,
}

/// nearcore sandbox's `sandbox_fast_forward`: makes `delta_height` blocks at once (pending
/// transactions, receipts and yield timeouts run as usual), so a test can reach a yield
/// timeout without waiting 200 block times.
async fn fast_forward(ctx: &RpcContext, p: Value) -> Result<Value, RpcError> {
    let FastForward { delta_height } = params(p)?;
    if delta_height > MAX_FAST_FORWARD {
        return Err(parse_error(format!(
            "delta_height is at most {MAX_FAST_FORWARD}"
        )));
    }
    let chain = ctx.chain.clone();
    let heights = ctx.height_tx.clone();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        for _ in 0..delta_height {
            let h = lock(&chain)
                .produce_block()
                .map_err(|e| e.to_string())?
                .height;
            heights.send_replace(h);
        }
        Ok(())
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(json!({}))
}

/// The part of nearcore's protocol config that clients read (near-api-js reads
/// `runtime_config.storage_amount_per_byte` for balances).
fn protocol_config(ctx: &RpcContext) -> Result<Value, RpcError> {
    let chain = lock(&ctx.chain);
    let runtime_config =
        near_parameters::RuntimeConfigView::from(chain.runtime.config.as_ref().clone());
    let genesis_time =
        near_time::Utc::from_unix_timestamp_nanos(chain.genesis.genesis_time_ns as i128)
            .unwrap_or(near_time::Utc::UNIX_EPOCH);
    Ok(json!({
        "protocol_version": PROTOCOL_VERSION,
        "genesis_time": genesis_time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "chain_id": chain.genesis.chain_id,
        "genesis_height": 0,
        "num_block_producer_seats": 1,
        "epoch_length": 43200,
        "min_gas_price": GAS_PRICE.to_string(),
        "max_gas_price": GAS_PRICE.to_string(),
        "gas_limit": crate::views::CHUNK_GAS_LIMIT,
        "transaction_validity_period": 86400,
        "minimum_stake_ratio": [1, 6250],
        "protocol_upgrade_stake_threshold": [4, 5],
        "runtime_config": runtime_config,
    }))
}

fn find_block(chain: &Chain, r: &BlockReference) -> Result<Option<BlockRecord>, RpcError> {
    let b = match r {
        BlockReference::BlockId(BlockId::Height(h)) => chain.block_by_height(*h),
        BlockReference::BlockId(BlockId::Hash(h)) => chain.block_by_hash(h),
        BlockReference::Finality(f) => chain.block_at_finality(f).map(Some),
        BlockReference::SyncCheckpoint(SyncCheckpoint::Genesis)
        | BlockReference::SyncCheckpoint(SyncCheckpoint::EarliestAvailable) => {
            chain.block_by_height(0)
        }
    };
    b.map_err(internal)
}

fn block_reference(p: Value) -> Result<BlockReference, RpcError> {
    match p {
        Value::Array(mut a) if a.len() == 1 => {
            let id: BlockId = params(a.remove(0))?;
            Ok(BlockReference::BlockId(id))
        }
        Value::Null => Ok(BlockReference::latest()),
        other => Ok(params::<RpcBlockRequest>(other)?.block_reference),
    }
}

fn block(ctx: &RpcContext, p: Value) -> Result<Value, RpcError> {
    let r = block_reference(p)?;
    let chain = lock(&ctx.chain);
    match find_block(&chain, &r)? {
        Some(b) => to_value(&block_view(&chain, &b)),
        None => Err(RpcBlockError::UnknownBlock {
            error_message: format!("{r:?}"),
        }
        .into()),
    }
}

fn chunk(ctx: &RpcContext, p: Value) -> Result<Value, RpcError> {
    let reference: ChunkReference = match p {
        Value::Array(mut a) if a.len() == 1 => ChunkReference::ChunkHash {
            chunk_id: params(a.remove(0))?,
        },
        other => params(other)?,
    };
    let chain = lock(&ctx.chain);
    let b = match &reference {
        ChunkReference::BlockShardId { block_id, shard_id } => {
            if *shard_id != near_primitives::types::ShardId::new(0) {
                return Err(RpcChunkError::InvalidShardId {
                    shard_id: *shard_id,
                }
                .into());
            }
            find_block(&chain, &BlockReference::BlockId(block_id.clone()))?
        }
        ChunkReference::ChunkHash { chunk_id } => {
            chain.block_by_hash(chunk_id).map_err(internal)?
        }
    };
    match b {
        Some(b) => to_value(&chunk_view(&chain, &b).map_err(internal)?),
        None => Err(RpcChunkError::UnknownBlock {
            error_message: format!("{reference:?}"),
        }
        .into()),
    }
}

fn query(ctx: &RpcContext, p: Value) -> Result<Value, RpcError> {
    let q: RpcQueryRequest = params(p)?;
    let mut chain = lock(&ctx.chain);
    let Some(block) = find_block(&chain, &q.block_reference)? else {
        return Err(RpcQueryError::UnknownBlock {
            block_reference: q.block_reference,
        }
        .into());
    };
    // The state as of that block when the devnet still has it (the head and the blocks
    // down to `final`); an older block's query reads the latest state and says so with the
    // head's height and hash.
    let (block, undo) = match chain.undo_to(block.height) {
        Some(undo) => (block, undo),
        None => (chain.head().clone(), Default::default()),
    };
    let chain = &mut *chain;
    let runtime = &chain.runtime;
    chain
        .state
        .rewound(undo, |state| query_state(runtime, state, q.request, &block))
}

/// Answers a query from `state`, the state as of `block`.
fn query_state(
    runtime: &Runtime,
    state: &mut State,
    request: QueryRequest,
    block: &BlockRecord,
) -> Result<Value, RpcError> {
    let (block_height, block_hash) = (block.height, block.hash);
    let unknown_account = |requested_account_id: &AccountId| -> RpcError {
        RpcQueryError::UnknownAccount {
            requested_account_id: requested_account_id.clone(),
            block_height,
            block_hash,
        }
        .into()
    };
    // nearcore answers these two failures with a result carrying `error` (legacy shape).
    let legacy_error = |error: String, logs: Vec<String>| {
        Ok(
            json!({ "error": error, "logs": logs, "block_height": block_height, "block_hash": block_hash }),
        )
    };
    let kind = match request {
        QueryRequest::ViewAccount { account_id } => match state.account(&account_id) {
            Some(a) => QueryResponseKind::ViewAccount(account_view(&a)),
            None => return Err(unknown_account(&account_id)),
        },
        QueryRequest::ViewCode { account_id } => {
            let Some(a) = state.account(&account_id) else {
                return Err(unknown_account(&account_id));
            };
            match state.code(&account_id) {
                Some(code) => QueryResponseKind::ViewCode(ContractCodeView {
                    code,
                    hash: a.code_hash,
                }),
                None => {
                    return Err(RpcQueryError::NoContractCode {
                        contract_account_id: account_id,
                        block_height,
                        block_hash,
                    }
                    .into())
                }
            }
        }
        QueryRequest::ViewState {
            account_id,
            prefix,
            after_key,
            limit,
            ..
        } => {
            if state.account(&account_id).is_none() {
                return Err(unknown_account(&account_id));
            }
            let base = data_prefix(&account_id);
            let mut full = base.clone();
            full.extend_from_slice(&prefix);
            let limit = limit.map(|l| l.get() as usize).unwrap_or(usize::MAX);
            let mut values: Vec<StateItem> = state
                .scan_prefix(&full)
                .into_iter()
                .map(|(k, v)| (k[base.len()..].to_vec(), v))
                .filter(|(k, _)| {
                    after_key
                        .as_ref()
                        .is_none_or(|a| k.as_slice() > a.as_slice())
                })
                .take(limit.saturating_add(1))
                .map(|(k, v)| StateItem {
                    key: k.into(),
                    value: v.into(),
                })
                .collect();
            // Paginated: `last_key` says where the next page starts.
            let last_key = if values.len() > limit {
                values.truncate(limit);
                values.last().map(|item| item.key.clone())
            } else {
                None
            };
            QueryResponseKind::ViewState(ViewStateResult {
                values,
                proof: vec![],
                last_key,
            })
        }
        QueryRequest::ViewAccessKey {
            account_id,
            public_key,
        } => match state.access_key(&account_id, &public_key) {
            Some(ak) => QueryResponseKind::AccessKey(AccessKeyView::from(ak)),
            None => {
                return legacy_error(
                    format!("access key {public_key} does not exist while viewing"),
                    vec![],
                )
            }
        },
        QueryRequest::ViewAccessKeyList { account_id, .. } => {
            if state.account(&account_id).is_none() {
                return Err(unknown_account(&account_id));
            }
            let keys = state
                .access_keys(&account_id)
                .into_iter()
                .map(|(pk, ak)| AccessKeyInfoView::new(pk, AccessKeyView::from(ak)))
                .collect();
            QueryResponseKind::AccessKeyList(AccessKeyList {
                keys,
                last_key: None,
            })
        }
        QueryRequest::CallFunction {
            account_id,
            method_name,
            args,
        } => {
            let block_ctx = block.context();
            let result =
                runtime.view_call(state, &account_id, &method_name, args.to_vec(), &block_ctx);
            match result {
                Ok((result, logs)) => QueryResponseKind::CallResult(CallResult { result, logs }),
                Err(ViewCallError::UnknownAccount) => return Err(unknown_account(&account_id)),
                Err(ViewCallError::NoContractCode) => {
                    let e = near_primitives::errors::CompilationError::CodeDoesNotExist {
                        account_id: account_id.clone(),
                    };
                    return legacy_error(
                        format!("wasm execution failed with error: CompilationError({e:?})"),
                        vec![],
                    );
                }
                Err(ViewCallError::Failed { error, logs }) => {
                    return legacy_error(
                        format!("wasm execution failed with error: {error:?}"),
                        logs,
                    )
                }
            }
        }
        other => {
            return Err(parse_error(format!(
                "query {other:?} is not supported by the devnet"
            )))
        }
    };
    to_value(&RpcQueryResponse {
        kind,
        block_height,
        block_hash,
    })
}

fn first_tx_param(p: Value) -> Result<SignedTransaction, RpcError> {
    match p {
        Value::Array(mut a) if !a.is_empty() => params(a.remove(0)),
        _ => Err(parse_error("Require at least one parameter")),
    }
}

fn submit(ctx: &RpcContext, tx: SignedTransaction) -> Result<CryptoHash, RpcError> {
    // The signature is checked before taking the chain lock.
    let invalid =
        |context| -> RpcError { RpcTransactionError::InvalidTransaction { context }.into() };
    let tx = VerifiedTx::new(tx).map_err(invalid)?;
    lock(&ctx.chain).submit_verified(tx).map_err(invalid)
}

fn tx_status_params(p: Value) -> Result<(CryptoHash, TxExecutionStatus), RpcError> {
    match p {
        Value::Array(a) => {
            let h: CryptoHash = params(a.first().cloned().unwrap_or(Value::Null))?;
            Ok((h, TxExecutionStatus::ExecutedOptimistic))
        }
        other => {
            let req: RpcTransactionStatusRequest = params(other)?;
            let h = match &req.transaction_info {
                TransactionInfo::Transaction { signed_tx } => signed_tx.get_hash(),
                TransactionInfo::TransactionId { tx_hash, .. } => *tx_hash,
            };
            Ok((h, req.wait_until))
        }
    }
}

/// How far a transaction included at `included_height` has got (NEAR's
/// `final_execution_status`), with `final_height` the last final block and `last_height` the
/// highest block holding one of its outcomes.
fn reached(
    included_height: u64,
    last_height: u64,
    complete: bool,
    final_height: u64,
) -> TxExecutionStatus {
    let included_final = included_height <= final_height;
    match (complete, included_final) {
        (true, true) if last_height <= final_height => TxExecutionStatus::Final,
        (true, true) => TxExecutionStatus::Executed,
        (true, false) => TxExecutionStatus::ExecutedOptimistic,
        (false, true) => TxExecutionStatus::IncludedFinal,
        (false, false) => TxExecutionStatus::Included,
    }
}

/// Whether a transaction at `status` is as far as `wait` asks. Not an order: a transaction
/// can be included in a final block (`INCLUDED_FINAL`) before it has executed
/// (`EXECUTED_OPTIMISTIC`).
fn satisfies(status: &TxExecutionStatus, wait: &TxExecutionStatus) -> bool {
    use TxExecutionStatus as S;
    match wait {
        S::None => true,
        S::Included => !matches!(status, S::None),
        S::ExecutedOptimistic => matches!(status, S::ExecutedOptimistic | S::Executed | S::Final),
        S::IncludedFinal => matches!(status, S::IncludedFinal | S::Executed | S::Final),
        S::Executed => matches!(status, S::Executed | S::Final),
        S::Final => matches!(status, S::Final),
    }
}

/// Waits until the transaction reaches `wait` (or the timeout). Returns the outcome so far
/// and how far the transaction has got.
async fn wait_tx(
    ctx: &RpcContext,
    h: CryptoHash,
    wait: TxExecutionStatus,
) -> Result<
    (
        Option<FinalExecutionOutcomeWithReceiptView>,
        TxExecutionStatus,
    ),
    RpcError,
> {
    let deadline = tokio::time::Instant::now() + ctx.tx_timeout;
    let mut heights = ctx.heights.clone();
    loop {
        let (state, final_height) = {
            let chain = lock(&ctx.chain);
            (chain.tx_state(&h).map_err(internal)?, chain.final_height())
        };
        match state {
            TxState::Unknown => {
                return Err(RpcTransactionError::UnknownTransaction {
                    requested_transaction_hash: h,
                }
                .into())
            }
            TxState::Rejected(context) => {
                return Err(RpcTransactionError::InvalidTransaction { context }.into())
            }
            TxState::Pending => {
                if satisfies(&TxExecutionStatus::None, &wait) {
                    return Ok((None, TxExecutionStatus::None));
                }
            }
            TxState::Included {
                outcome,
                receipts,
                complete,
                included_height,
                last_height,
            } => {
                let status = reached(included_height, last_height, complete, final_height);
                if satisfies(&status, &wait) {
                    let o = FinalExecutionOutcomeWithReceiptView {
                        final_outcome: *outcome,
                        receipts,
                    };
                    return Ok((Some(o), status));
                }
            }
        }
        match tokio::time::timeout_at(deadline, heights.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(internal("the devnet is shutting down")),
            Err(_) => return Err(RpcTransactionError::TimeoutError(None).into()),
        }
    }
}

async fn tx_response(
    ctx: &RpcContext,
    h: CryptoHash,
    wait: TxExecutionStatus,
    with_receipts: bool,
) -> Result<Value, RpcError> {
    let (outcome, final_execution_status) = wait_tx(ctx, h, wait).await?;
    let final_execution_outcome = outcome.map(|o| {
        if with_receipts {
            FinalExecutionOutcomeViewEnum::FinalExecutionOutcomeWithReceipt(o)
        } else {
            FinalExecutionOutcomeViewEnum::FinalExecutionOutcome(o.final_outcome)
        }
    });
    to_value(&RpcTransactionResponse {
        final_execution_outcome,
        final_execution_status,
    })
}
