//! The node's access to NEAR over JSON-RPC (`near-jsonrpc-client`): view calls on the contract,
//! function calls signed with the node's account key, and blocks with their receipts.
//!
//! A client follows one [`Finality`] (`[near] finality` in the config, `near-final` unless
//! set): its views read the state at that finality, and the blocks it hands out
//! (`latest_block`, `block_at`, `block_receipts`) are at or below it. See the README,
//! "Which blocks the indexer follows".
//!
//! Reads (`view`, `latest_block`, `block_at`, `block_receipts`) are single attempts: an error is
//! [`ChainError::Rpc`] and the caller decides when to try again. `call` retries by itself (see
//! there). Every request has a time limit, so a server that stops answering is an error, not a
//! task that hangs forever.
//!
//! The secret key never leaves the signer: neither `Debug` nor any log line shows it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use near_account_id::AccountId;
use near_crypto::{InMemorySigner, Signer};
use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_client::{methods, JsonRpcClient};
use near_jsonrpc_primitives::types::blocks::RpcBlockError;
use near_jsonrpc_primitives::types::chunks::{ChunkReference, RpcChunkError};
use near_jsonrpc_primitives::types::query::{QueryResponseKind, RpcQueryError};
use near_jsonrpc_primitives::types::transactions::RpcTransactionError;
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::errors::InvalidTxError;
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{Balance, BlockId, BlockReference, Gas};
use near_primitives::views::{
    BlockView, FinalExecutionOutcomeView, FinalExecutionStatus, QueryRequest, ReceiptView,
    TxExecutionStatus,
};
use thiserror::Error;

/// Which blocks a client follows: how settled a block must be before the node acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finality {
    /// The head: the lowest latency, but a block can still be dropped by a fork.
    Optimistic,
    /// Doomslug-final, one block behind the head on NEAR: reverted only if block producers
    /// provably misbehave.
    #[default]
    NearFinal,
    /// BFT-final, about two blocks behind the head on NEAR.
    Final,
}

impl Finality {
    /// The JSON-RPC block reference for this finality.
    pub fn reference(self) -> BlockReference {
        use near_primitives::types::Finality as Near;
        BlockReference::Finality(match self {
            Finality::Optimistic => Near::None,
            Finality::NearFinal => Near::DoomSlug,
            Finality::Final => Near::Final,
        })
    }

    /// As NEAR's JSON-RPC and the config spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Finality::Optimistic => "optimistic",
            Finality::NearFinal => "near-final",
            Finality::Final => "final",
        }
    }
}

impl fmt::Display for Finality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A block as the node uses it: where it is, what it follows, and its public randomness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    pub height: u64,
    pub hash: [u8; 32],
    /// The block before it (a following block that names another parent means a fork
    /// replaced this one).
    pub prev_hash: [u8; 32],
    /// The block header's `random_value`: entropy no requester could choose.
    pub random_value: [u8; 32],
}

impl BlockInfo {
    fn from_view(block: &BlockView) -> Self {
        BlockInfo {
            height: block.header.height,
            hash: block.header.hash.0,
            prev_hash: block.header.prev_hash.0,
            random_value: block.header.random_value.0,
        }
    }
}

#[derive(Debug, Error)]
pub enum ChainError {
    /// The request got no usable answer (transport, time limit, or an error the server
    /// returned); worth trying again.
    #[error("json-rpc: {0}")]
    Rpc(String),
    /// The transaction (or view call) ran and failed, or the chain refused the transaction for
    /// good (e.g. not enough balance); the message holds the contract's panic message. Trying
    /// the same again would fail the same way.
    #[error("failed: {0}")]
    Failed(String),
    /// The answer was not of the shape this client expects.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

fn rpc_error<E: fmt::Debug + fmt::Display>(method: &str, e: JsonRpcError<E>) -> ChainError {
    ChainError::Rpc(format!("{method}: {e}"))
}

/// Limits and retry policy of [`ChainClient`].
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// Time limit of one read request.
    pub request_timeout: Duration,
    /// Time limit of one `send_tx` that waits for the final outcome (the server answers with
    /// a timeout of its own before that, usually after 10 s).
    pub send_timeout: Duration,
    /// How many times `call` sends a transaction again after a transport or server error.
    pub rpc_retries: u32,
    /// How many times `call` signs the transaction again with a new nonce or block hash.
    pub resign_retries: u32,
    /// The first back-off after an error; it doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ChainSettings {
    fn default() -> Self {
        ChainSettings {
            request_timeout: Duration::from_secs(20),
            send_timeout: Duration::from_secs(60),
            rpc_retries: 5,
            resign_retries: 20,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(3),
        }
    }
}

/// NEAR JSON-RPC access for one contract, optionally with the node's account key for calls.
/// `Send + Sync`: share it behind an `Arc`; concurrent `call`s take distinct nonces.
pub struct ChainClient {
    rpc: JsonRpcClient,
    contract_id: AccountId,
    signer: Option<Signer>,
    settings: ChainSettings,
    /// The last nonce handed out (valid once `nonce_known`).
    nonce: AtomicU64,
    nonce_known: AtomicBool,
    nonce_init: tokio::sync::Mutex<()>,
    /// The finality views read at and blocks are followed at.
    finality: Finality,
    /// A height known to be at or below the followed finality (the highest seen), so
    /// `block_at` below it needs no extra request.
    followed_height: AtomicU64,
}

impl fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainClient")
            .field("rpc", &self.rpc.server_addr())
            .field("contract_id", &self.contract_id)
            .field("finality", &self.finality)
            .field(
                "account",
                &self.signer.as_ref().map(|s| s.get_account_id().to_string()),
            )
            .finish_non_exhaustive()
    }
}

/// How one attempt at sending a signed transaction ended, short of an outcome.
enum SendError {
    /// The access key's nonce (given) is already past ours.
    Nonce(u64),
    /// The nonce is too far ahead of the chain: start again from the chain's nonce.
    NonceTooLarge,
    /// The block hash is too old or unknown: sign again.
    Expired,
    /// Refused for good.
    Refused(String),
    /// No answer after the retries.
    Rpc(String),
}

impl ChainClient {
    /// `signer`: the node's account key, `None` for a read-only client.
    pub fn new(
        rpc_url: &str,
        contract_id: AccountId,
        signer: Option<crate::keys::AccountKey>,
    ) -> Self {
        Self::with_settings(rpc_url, contract_id, signer, ChainSettings::default())
    }

    pub fn with_settings(
        rpc_url: &str,
        contract_id: AccountId,
        signer: Option<crate::keys::AccountKey>,
        settings: ChainSettings,
    ) -> Self {
        ChainClient {
            rpc: JsonRpcClient::connect(rpc_url),
            contract_id,
            signer: signer.map(|k| InMemorySigner::from_secret_key(k.account_id, k.secret_key)),
            settings,
            nonce: AtomicU64::new(0),
            nonce_known: AtomicBool::new(false),
            nonce_init: tokio::sync::Mutex::new(()),
            finality: Finality::default(),
            followed_height: AtomicU64::new(0),
        }
    }

    /// This client following `finality` instead of the default (`near-final`).
    pub fn with_finality(mut self, finality: Finality) -> Self {
        self.finality = finality;
        self
    }

    /// The finality this client's views read at and its blocks are followed at.
    pub fn finality(&self) -> Finality {
        self.finality
    }

    pub fn contract_id(&self) -> &AccountId {
        &self.contract_id
    }

    /// The account that signs `call`s, if any.
    pub fn account_id(&self) -> Option<AccountId> {
        self.signer.as_ref().map(|s| s.get_account_id())
    }

    async fn request<M: methods::RpcMethod>(
        &self,
        method: &str,
        limit: Duration,
        request: M,
    ) -> Result<M::Response, JsonRpcError<M::Error>>
    where
        M::Error: fmt::Debug,
    {
        match tokio::time::timeout(limit, self.rpc.call(request)).await {
            Ok(r) => r,
            Err(_) => Err(JsonRpcError::ServerError(
                JsonRpcServerError::InternalError {
                    info: Some(format!("{method}: no answer within {limit:?}")),
                },
            )),
        }
    }

    /// A view call on the contract at the client's finality, JSON args, JSON result parsed.
    /// That is the state as of the latest block the client follows, so never older than a
    /// block it has handed out (a request the indexer found in block `h` is checked at `h`
    /// or later). A contract panic (or a missing contract) is [`ChainError::Failed`].
    pub async fn view<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        args: &serde_json::Value,
    ) -> Result<T, ChainError> {
        let request = methods::query::RpcQueryRequest {
            block_reference: self.finality.reference(),
            request: QueryRequest::CallFunction {
                account_id: self.contract_id.clone(),
                method_name: method.to_string(),
                args: args.to_string().into_bytes().into(),
            },
        };
        let response = match self
            .request("query", self.settings.request_timeout, request)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Err(match e.handler_error() {
                    Some(RpcQueryError::ContractExecutionError { vm_error, .. }) => {
                        ChainError::Failed(format!("view {method}: {vm_error}"))
                    }
                    Some(
                        h @ (RpcQueryError::UnknownAccount { .. }
                        | RpcQueryError::NoContractCode { .. }
                        | RpcQueryError::InvalidAccount { .. }),
                    ) => ChainError::Failed(format!("view {method}: {h}")),
                    _ => rpc_error(&format!("view {method}"), e),
                })
            }
        };
        match response.kind {
            QueryResponseKind::CallResult(c) => serde_json::from_slice(&c.result)
                .map_err(|e| ChainError::Unexpected(format!("view {method}: result: {e}"))),
            other => Err(ChainError::Unexpected(format!(
                "view {method}: not a call result: {other:?}"
            ))),
        }
    }

    async fn block_view(&self, reference: BlockReference) -> Result<Option<BlockView>, ChainError> {
        let request = methods::block::RpcBlockRequest {
            block_reference: reference,
        };
        match self
            .request("block", self.settings.request_timeout, request)
            .await
        {
            Ok(b) => Ok(Some(b)),
            Err(e) => match e.handler_error() {
                Some(RpcBlockError::UnknownBlock { .. }) => Ok(None),
                _ => Err(rpc_error("block", e)),
            },
        }
    }

    /// The latest block at the client's finality.
    pub async fn latest_block(&self) -> Result<BlockInfo, ChainError> {
        let view = self
            .block_view(self.finality.reference())
            .await?
            .ok_or_else(|| ChainError::Rpc(format!("block: no {} block yet", self.finality)))?;
        self.followed_height
            .fetch_max(view.header.height, Ordering::Relaxed);
        Ok(BlockInfo::from_view(&view))
    }

    /// The block at `height`; `None` when the chain skipped that height or it is not at the
    /// client's finality (or not produced) yet.
    pub async fn block_at(&self, height: u64) -> Result<Option<BlockInfo>, ChainError> {
        Ok(self
            .followed_block_view_at(height)
            .await?
            .map(|b| BlockInfo::from_view(&b)))
    }

    async fn followed_block_view_at(&self, height: u64) -> Result<Option<BlockView>, ChainError> {
        if height > self.followed_height.load(Ordering::Relaxed)
            && height > self.latest_block().await?.height
        {
            return Ok(None);
        }
        let view = self
            .block_view(BlockReference::BlockId(BlockId::Height(height)))
            .await?;
        match view {
            Some(v) if v.header.height != height => Err(ChainError::Unexpected(format!(
                "asked for block {height}, got block {}",
                v.header.height
            ))),
            v => Ok(v),
        }
    }

    /// The block at `height` with the receipts of the chunks it includes (chunks new in this
    /// block only; a chunk repeated from an earlier block is skipped). `None` as in
    /// [`ChainClient::block_at`].
    pub async fn block_receipts(
        &self,
        height: u64,
    ) -> Result<Option<(BlockInfo, Vec<ReceiptView>)>, ChainError> {
        let Some(block) = self.followed_block_view_at(height).await? else {
            return Ok(None);
        };
        let mut receipts = Vec::new();
        for chunk in &block.chunks {
            if chunk.height_included != block.header.height {
                continue;
            }
            receipts.extend(self.chunk_receipts(chunk.chunk_hash).await?);
        }
        Ok(Some((BlockInfo::from_view(&block), receipts)))
    }

    async fn chunk_receipts(&self, chunk_hash: CryptoHash) -> Result<Vec<ReceiptView>, ChainError> {
        let request = methods::chunk::RpcChunkRequest {
            chunk_reference: ChunkReference::ChunkHash {
                chunk_id: chunk_hash,
            },
        };
        match self
            .request("chunk", self.settings.request_timeout, request)
            .await
        {
            Ok(chunk) => Ok(chunk.receipts),
            Err(e) => match e.handler_error() {
                Some(RpcChunkError::InvalidShardId { .. }) => {
                    Err(ChainError::Unexpected(format!("chunk {chunk_hash}: {e}")))
                }
                _ => Err(rpc_error(&format!("chunk {chunk_hash}"), e)),
            },
        }
    }

    /// The nonce of the signer's access key on chain, at the head: a new transaction is
    /// checked against the head's state, and at `final` the nonce lags this key's latest
    /// transactions by a couple of blocks (a nonce too low is corrected anyway, see `call`).
    async fn chain_nonce(&self, signer: &Signer) -> Result<u64, ChainError> {
        let request = methods::query::RpcQueryRequest {
            block_reference: Finality::Optimistic.reference(),
            request: QueryRequest::ViewAccessKey {
                account_id: signer.get_account_id(),
                public_key: signer.public_key(),
            },
        };
        let response = self
            .request("query", self.settings.request_timeout, request)
            .await
            .map_err(|e| match e.handler_error() {
                Some(h @ RpcQueryError::UnknownAccessKey { .. })
                | Some(h @ RpcQueryError::UnknownAccount { .. }) => {
                    ChainError::Failed(format!("access key of {}: {h}", signer.get_account_id()))
                }
                _ => rpc_error("view_access_key", e),
            })?;
        match response.kind {
            QueryResponseKind::AccessKey(k) => Ok(k.nonce),
            other => Err(ChainError::Unexpected(format!(
                "view_access_key: not an access key: {other:?}"
            ))),
        }
    }

    /// The next nonce: the chain's nonce is read once, then counted here.
    async fn next_nonce(&self, signer: &Signer) -> Result<u64, ChainError> {
        if !self.nonce_known.load(Ordering::Acquire) {
            let _guard = self.nonce_init.lock().await;
            if !self.nonce_known.load(Ordering::Acquire) {
                let n = self.chain_nonce(signer).await?;
                self.nonce.fetch_max(n, Ordering::AcqRel);
                self.nonce_known.store(true, Ordering::Release);
            }
        }
        Ok(self.nonce.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.settings
            .backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.settings.max_backoff)
    }

    /// A function call on the contract signed by the node's account; waits until the
    /// transaction's outcome is final; returns the call's return value bytes, or
    /// [`ChainError::Failed`] when it executed and failed (or was refused for good).
    ///
    /// Waiting for `FINAL` (not `EXECUTED_OPTIMISTIC`) costs a couple of blocks but means that
    /// once `call` returns, the effect shows in views at whatever finality the client follows
    /// (a vote, then a re-read of `state()`, never sees the state from before the vote).
    ///
    /// Safe to call from many tasks at once. A transport or server error sends the same signed
    /// transaction again (the chain recognizes it by hash), with back-off, up to
    /// `rpc_retries` times. A nonce the chain has already passed (another transaction of the
    /// same key got in first) or an expired block hash signs it again with a fresh nonce. A
    /// transaction that executed is never sent again.
    ///
    /// [`ChainError::Rpc`] means the outcome is unknown: the transaction may still execute, so
    /// a caller that tries again must accept a refusal like "has already voted on this".
    pub async fn call(
        &self,
        method: &str,
        args: &serde_json::Value,
        gas_tgas: u64,
        deposit_yocto: u128,
    ) -> Result<Vec<u8>, ChainError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| ChainError::Failed("this client has no account key to sign".into()))?;
        let action = Action::FunctionCall(Box::new(FunctionCallAction {
            method_name: method.to_string(),
            args: args.to_string().into_bytes(),
            gas: Gas::from_teragas(gas_tgas),
            deposit: Balance::from_yoctonear(deposit_yocto),
        }));
        // Read failures before sending, and transactions signed again.
        let (mut failures, mut attempt) = (0, 0);
        loop {
            let prepared = match self.next_nonce(signer).await {
                Ok(nonce) => self.recent_block_hash().await.map(|h| (nonce, h)),
                Err(e) => Err(e),
            };
            let (nonce, block_hash) = match prepared {
                Ok(p) => p,
                Err(ChainError::Rpc(e)) if failures < self.settings.rpc_retries => {
                    tracing::debug!(method, error = %e, "cannot prepare a transaction yet; retrying");
                    tokio::time::sleep(self.backoff(failures)).await;
                    failures += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let tx = Transaction::V0(TransactionV0 {
                signer_id: signer.get_account_id(),
                public_key: signer.public_key(),
                nonce,
                receiver_id: self.contract_id.clone(),
                block_hash,
                actions: vec![action.clone()],
            });
            let (hash, _) = tx.get_hash_and_size();
            let tx = SignedTransaction::new(signer.sign(hash.as_ref()), tx);
            let resign = match self.send(method, &tx).await {
                Ok(outcome) => return outcome_value(method, outcome),
                Err(SendError::Refused(e)) => {
                    return Err(ChainError::Failed(format!(
                        "{method}: transaction refused: {e}"
                    )))
                }
                Err(SendError::Rpc(e)) => return Err(ChainError::Rpc(e)),
                Err(SendError::Nonce(chain)) => {
                    self.nonce.fetch_max(chain, Ordering::AcqRel);
                    format!("nonce {nonce} already used (key nonce {chain})")
                }
                Err(SendError::NonceTooLarge) => {
                    // Start again from the chain's nonce.
                    self.nonce.store(0, Ordering::Release);
                    self.nonce_known.store(false, Ordering::Release);
                    format!("nonce {nonce} too far ahead of the key's nonce")
                }
                Err(SendError::Expired) => "block hash expired".to_string(),
            };
            if attempt >= self.settings.resign_retries {
                return Err(ChainError::Rpc(format!(
                    "{method}: gave up after {} attempts: {resign}",
                    attempt + 1
                )));
            }
            tracing::debug!(method, reason = %resign, "signing the transaction again");
            attempt += 1;
        }
    }

    /// A final block's hash for a transaction: every RPC node knows it, and no fork drops it.
    async fn recent_block_hash(&self) -> Result<CryptoHash, ChainError> {
        let b = self
            .block_view(Finality::Final.reference())
            .await?
            .ok_or_else(|| ChainError::Rpc("block: no final block yet".into()))?;
        // Final is at or below every finality a client can follow.
        self.followed_height
            .fetch_max(b.header.height, Ordering::Relaxed);
        Ok(b.header.hash)
    }

    /// Sends `tx` with `send_tx` (waiting for the final outcome), again on transport and
    /// server errors and on the server's own timeout.
    async fn send(
        &self,
        method: &str,
        tx: &SignedTransaction,
    ) -> Result<FinalExecutionOutcomeView, SendError> {
        let mut attempt = 0;
        loop {
            let request = methods::send_tx::RpcSendTransactionRequest {
                signed_transaction: tx.clone(),
                wait_until: TxExecutionStatus::Final,
            };
            let error = match self
                .request("send_tx", self.settings.send_timeout, request)
                .await
            {
                Ok(r) => match r.final_execution_outcome {
                    Some(o) => return Ok(o.into_outcome()),
                    None => format!("no outcome yet (status {:?})", r.final_execution_status),
                },
                Err(e) => match e.handler_error() {
                    Some(RpcTransactionError::InvalidTransaction { context }) => match context {
                        InvalidTxError::InvalidNonce { ak_nonce, .. } => {
                            // After a lost answer, the nonce may be "used" by this very
                            // transaction: look it up before signing another.
                            if attempt > 0 {
                                if let Some(outcome) = self.tx_outcome(tx).await {
                                    return Ok(outcome);
                                }
                            }
                            return Err(SendError::Nonce(*ak_nonce));
                        }
                        InvalidTxError::NonceTooLarge { .. } => {
                            return Err(SendError::NonceTooLarge)
                        }
                        InvalidTxError::Expired => return Err(SendError::Expired),
                        // Worth waiting for: back off and send again.
                        InvalidTxError::ShardCongested { .. }
                        | InvalidTxError::ShardStuck { .. } => {
                            format!("send_tx {method}: {context}")
                        }
                        other => return Err(SendError::Refused(other.to_string())),
                    },
                    _ => format!("send_tx {method}: {e}"),
                },
            };
            if attempt >= self.settings.rpc_retries {
                return Err(SendError::Rpc(error));
            }
            tracing::warn!(method, tx = %tx.get_hash(), %error, "sending a transaction failed; sending it again");
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }
}

impl ChainClient {
    /// The final outcome of `tx` if the chain knows it.
    async fn tx_outcome(&self, tx: &SignedTransaction) -> Option<FinalExecutionOutcomeView> {
        let request = methods::tx::RpcTransactionStatusRequest {
            transaction_info: methods::tx::TransactionInfo::TransactionId {
                tx_hash: tx.get_hash(),
                sender_account_id: tx.transaction.signer_id().clone(),
            },
            wait_until: TxExecutionStatus::Final,
        };
        let response = self
            .request("tx", self.settings.send_timeout, request)
            .await
            .ok()?;
        response.final_execution_outcome.map(|o| o.into_outcome())
    }
}

fn outcome_value(method: &str, outcome: FinalExecutionOutcomeView) -> Result<Vec<u8>, ChainError> {
    match outcome.status {
        FinalExecutionStatus::SuccessValue(v) => Ok(v),
        FinalExecutionStatus::Failure(e) => Err(ChainError::Failed(format!("{method}: {e}"))),
        other => Err(ChainError::Unexpected(format!(
            "{method}: outcome not final: {other:?}"
        ))),
    }
}
