//! Sending real `sign` transactions to the local network and checking the answers: what
//! `chainsig sign` and `chainsig bench` share.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chainsig_devnet::client::{function_call, sign_transaction};
use chainsig_primitives::{
    derive_public_key, derive_tweak, EcdsaPayload, EcdsaSignature, PublicKey, SignatureResponse,
};
use near_crypto::{InMemorySigner, KeyFile, Signer};
use near_jsonrpc_client::errors::JsonRpcError;
use near_jsonrpc_client::{methods, JsonRpcClient};
use near_jsonrpc_primitives::types::chunks::ChunkReference;
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_jsonrpc_primitives::types::transactions::{RpcTransactionError, TransactionInfo};
use near_primitives::errors::{
    ActionErrorKind, FunctionCallError, InvalidTxError, TxExecutionError,
};
use near_primitives::hash::CryptoHash;
use near_primitives::types::{AccountId, Balance, BlockId, BlockReference, Finality, Gas, ShardId};
use near_primitives::views::{
    ActionView, FinalExecutionOutcomeView, FinalExecutionStatus, QueryRequest, TxExecutionStatus,
};
use serde_json::{json, Value};

use super::files::Network;
use crate::error::CliError;

/// Gas attached to `sign`: the contract needs 20 TGas; the rest is headroom.
const SIGN_GAS: u64 = 50 * 10u64.pow(12);
/// How often a transaction is re-sent after losing a nonce race to another client of the
/// same account (each `chainsig sign` process counts nonces on its own).
const NONCE_RETRIES: u32 = 40;
/// Longer than the contract's 200-block timeout at any sensible block time.
const OUTCOME_DEADLINE: Duration = Duration::from_secs(600);

/// A verified answer to one `sign` call.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The contract's response object, as it returned it.
    pub response: Value,
    pub signature: EcdsaSignature,
    /// The key it was checked against.
    pub derived_key: PublicKey,
    /// From sending the transaction to having its final outcome.
    pub latency: Duration,
    /// From the block that included the `sign` transaction to the block that included the
    /// node's `respond` transaction (`None` if no such transaction was found).
    pub blocks_to_respond: Option<u64>,
    /// From the block that included the `sign` transaction to the block of its last receipt
    /// (the callback that returned the signature to the caller).
    pub blocks: u64,
    pub tx_hash: CryptoHash,
}

pub struct SignClient {
    rpc: JsonRpcClient,
    contract: AccountId,
    signer: Signer,
    root: PublicKey,
    /// The last nonce this client used; `None` until read from the chain.
    nonce: tokio::sync::Mutex<Option<u64>>,
    heights: std::sync::Mutex<HashMap<CryptoHash, u64>>,
    /// Per block height, the payloads (hex) of the `respond` transactions it included.
    responds: std::sync::Mutex<HashMap<u64, Vec<String>>>,
}

fn rpc_failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("{what}: {e}"))
}

/// Reads a near-cli key file and checks it is `account`'s.
pub fn load_signer(path: &Path, account: &str) -> Result<Signer, CliError> {
    let file = KeyFile::from_file(path)
        .map_err(|e| CliError::Input(format!("key file {}: {e}", path.display())))?;
    if file.account_id.as_str() != account {
        return Err(CliError::Input(format!(
            "key file {} is the key of {}, not of {account}",
            path.display(),
            file.account_id
        )));
    }
    Ok(InMemorySigner::from_secret_key(
        file.account_id,
        file.secret_key,
    ))
}

impl SignClient {
    /// A client signing as `account` (default: the network's user), whose key file must be
    /// in the home.
    pub fn new(network: &Network, home: &Path, account: Option<&str>) -> Result<Self, CliError> {
        let account = account.unwrap_or(&network.user_account);
        account
            .parse::<AccountId>()
            .map_err(|e| CliError::input("--account", e))?;
        let signer = load_signer(&network.key_file_of(home, account), account)?;
        let contract = network
            .contract_id
            .parse()
            .map_err(|e| rpc_failed("network.json contract_id", e))?;
        let root = PublicKey::parse(&network.root_public_key)
            .map_err(|e| rpc_failed("network.json root_public_key", e))?;
        Ok(SignClient {
            rpc: JsonRpcClient::connect(&network.rpc_url),
            contract,
            signer,
            root,
            nonce: tokio::sync::Mutex::new(None),
            heights: std::sync::Mutex::new(HashMap::new()),
            responds: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn account(&self) -> AccountId {
        self.signer.get_account_id()
    }

    /// The key `sign(path)` from this account signs with.
    pub fn derived_key(&self, path: &str) -> Result<PublicKey, CliError> {
        let tweak = derive_tweak(self.account().as_str(), path)
            .map_err(|e| CliError::input("--path", e))?;
        derive_public_key(self.root.as_affine(), &tweak)
            .and_then(PublicKey::from_affine)
            .map_err(|e| CliError::Failed(format!("derivation failed: {e}")))
    }

    /// Sends `sign(payload, path)`, waits for the outcome and verifies the signature.
    pub async fn sign(&self, payload: &EcdsaPayload, path: &str) -> Result<Signed, CliError> {
        let derived_key = self.derived_key(path)?;
        let args = json!({"request": {
            "path": path,
            "payload_v2": {"Ecdsa": payload.to_hex()},
            "domain_id": 0,
        }});
        let started = Instant::now();
        let (tx_hash, outcome) = self.send_until_accepted(&args).await?;
        let latency = started.elapsed();
        let response = success_value(&outcome)?;
        let SignatureResponse::Secp256k1(signature) = serde_json::from_value(response.clone())
            .map_err(|e| {
                CliError::Failed(format!("the contract's response is not a signature: {e}"))
            })?;
        signature
            .verify(&derived_key, payload)
            .map_err(|e| CliError::Failed(format!("the signature does not verify: {e}")))?;
        let (first, last) = self.block_span(&outcome).await?;
        let respond = self.respond_height(first, last, payload).await?;
        Ok(Signed {
            response,
            signature,
            derived_key,
            latency,
            blocks_to_respond: respond.map(|h| h - first),
            blocks: last - first,
            tx_hash,
        })
    }

    /// Sends the transaction, re-sending it with a new nonce when another client of the same
    /// account took the nonce first, and waits for its final outcome.
    async fn send_until_accepted(
        &self,
        args: &Value,
    ) -> Result<(CryptoHash, FinalExecutionOutcomeView), CliError> {
        for attempt in 0..NONCE_RETRIES {
            let hash = self.submit(args).await?;
            match self.outcome(hash).await {
                Err(Outcome::NonceTaken) => {
                    *self.nonce.lock().await = None;
                    tokio::time::sleep(jitter(attempt)).await;
                }
                Err(Outcome::Failed(e)) => return Err(e),
                Ok(outcome) => return Ok((hash, outcome)),
            }
        }
        Err(CliError::Failed(format!(
            "the transaction lost the nonce race {NONCE_RETRIES} times: too many clients of {}",
            self.account()
        )))
    }

    /// Signs with the next nonce and hands the transaction to the chain. Nonces are taken
    /// and sent under one lock, so this client's transactions reach the pool in nonce order.
    async fn submit(&self, args: &Value) -> Result<CryptoHash, CliError> {
        let mut nonce = self.nonce.lock().await;
        let next = match *nonce {
            Some(n) => n + 1,
            None => self.chain_nonce().await? + 1,
        };
        let block_hash = self.latest_block_hash().await?;
        let action = function_call(
            "sign",
            args,
            Gas::from_gas(SIGN_GAS),
            Balance::from_yoctonear(1),
        );
        let tx = sign_transaction(&self.signer, &self.contract, next, block_hash, vec![action]);
        let hash = self
            .rpc
            .call(methods::broadcast_tx_async::RpcBroadcastTxAsyncRequest {
                signed_transaction: tx,
            })
            .await
            .map_err(|e| rpc_failed("sending the sign transaction", e))?;
        *nonce = Some(next);
        Ok(hash)
    }

    /// At the head (`optimistic`), which new transactions are checked against: at `final`
    /// the nonce lags this account's latest transactions by a couple of blocks.
    async fn chain_nonce(&self) -> Result<u64, CliError> {
        let response = self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::None),
                request: QueryRequest::ViewAccessKey {
                    account_id: self.signer.get_account_id(),
                    public_key: self.signer.public_key(),
                },
            })
            .await
            .map_err(|e| rpc_failed(&format!("reading the access key of {}", self.account()), e))?;
        match response.kind {
            QueryResponseKind::AccessKey(key) => Ok(key.nonce),
            other => Err(rpc_failed("access key query", format!("{other:?}"))),
        }
    }

    async fn latest_block_hash(&self) -> Result<CryptoHash, CliError> {
        self.rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::latest(),
            })
            .await
            .map(|block| block.header.hash)
            .map_err(|e| rpc_failed("reading the latest block", e))
    }

    /// Waits for the final outcome, asking again while the RPC's own wait times out.
    async fn outcome(&self, hash: CryptoHash) -> Result<FinalExecutionOutcomeView, Outcome> {
        let started = Instant::now();
        loop {
            let request = methods::tx::RpcTransactionStatusRequest {
                transaction_info: TransactionInfo::TransactionId {
                    tx_hash: hash,
                    sender_account_id: self.signer.get_account_id(),
                },
                wait_until: TxExecutionStatus::Final,
            };
            match self.rpc.call(request).await {
                Ok(response) => {
                    if let Some(outcome) = response.final_execution_outcome {
                        return Ok(outcome.into_outcome());
                    }
                }
                Err(e) => classify(e)?,
            }
            if started.elapsed() > OUTCOME_DEADLINE {
                return Err(Outcome::Failed(CliError::Failed(format!(
                    "no outcome for transaction {hash} after {} s",
                    OUTCOME_DEADLINE.as_secs()
                ))));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Heights of the `sign` transaction's block and of its last receipt's block.
    async fn block_span(
        &self,
        outcome: &FinalExecutionOutcomeView,
    ) -> Result<(u64, u64), CliError> {
        let first = self.height(outcome.transaction_outcome.block_hash).await?;
        let mut last = first;
        for receipt in &outcome.receipts_outcome {
            last = last.max(self.height(receipt.block_hash).await?);
        }
        Ok((first, last))
    }

    /// The first block in `from..=to` that included a `respond` for `payload`. The `sign`
    /// outcome does not link to it (a yield is resumed by another transaction), so the
    /// blocks between are searched; payloads are distinct enough to tell requests apart.
    async fn respond_height(
        &self,
        from: u64,
        to: u64,
        payload: &EcdsaPayload,
    ) -> Result<Option<u64>, CliError> {
        let wanted = payload.to_hex().to_lowercase();
        for height in from..=to {
            if self.responds_in(height).await?.contains(&wanted) {
                return Ok(Some(height));
            }
        }
        Ok(None)
    }

    async fn responds_in(&self, height: u64) -> Result<Vec<String>, CliError> {
        if let Some(found) = self
            .responds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&height)
        {
            return Ok(found.clone());
        }
        let chunk = self
            .rpc
            .call(methods::chunk::RpcChunkRequest {
                chunk_reference: ChunkReference::BlockShardId {
                    block_id: BlockId::Height(height),
                    shard_id: ShardId::new(0),
                },
            })
            .await
            .map_err(|e| rpc_failed(&format!("reading block {height}"), e))?;
        let found: Vec<String> = chunk
            .transactions
            .iter()
            .filter(|tx| tx.receiver_id == self.contract)
            .flat_map(|tx| tx.actions.iter())
            .filter_map(respond_payload)
            .collect();
        let mut responds = self.responds.lock().unwrap_or_else(|p| p.into_inner());
        if responds.len() > 100_000 {
            responds.clear();
        }
        responds.insert(height, found.clone());
        Ok(found)
    }

    async fn height(&self, hash: CryptoHash) -> Result<u64, CliError> {
        if let Some(&height) = self
            .heights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
        {
            return Ok(height);
        }
        let block = self
            .rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::BlockId(BlockId::Hash(hash)),
            })
            .await
            .map_err(|e| rpc_failed(&format!("reading block {hash}"), e))?;
        let mut heights = self.heights.lock().unwrap_or_else(|p| p.into_inner());
        if heights.len() > 100_000 {
            heights.clear();
        }
        heights.insert(hash, block.header.height);
        Ok(block.header.height)
    }
}

/// The payload (lower-case hex) a `respond` call answers.
fn respond_payload(action: &ActionView) -> Option<String> {
    let ActionView::FunctionCall {
        method_name, args, ..
    } = action
    else {
        return None;
    };
    if method_name != "respond" {
        return None;
    }
    let args: Value = serde_json::from_slice(args).ok()?;
    let hex = args["request"]["payload"]["Ecdsa"].as_str()?;
    Some(hex.to_lowercase())
}

/// Why waiting for an outcome ended without one.
enum Outcome {
    /// Another transaction of the account used this nonce first: send again.
    NonceTaken,
    Failed(CliError),
}

/// `Ok` for "ask again" (the RPC's own wait timed out), the reason otherwise.
fn classify(e: JsonRpcError<RpcTransactionError>) -> Result<(), Outcome> {
    match e.handler_error() {
        Some(RpcTransactionError::TimeoutError(_)) => Ok(()),
        Some(RpcTransactionError::InvalidTransaction {
            context: InvalidTxError::InvalidNonce { .. },
        }) => Err(Outcome::NonceTaken),
        Some(RpcTransactionError::InvalidTransaction { context }) => Err(Outcome::Failed(
            CliError::Failed(format!("the sign transaction was refused: {context}")),
        )),
        _ => Err(Outcome::Failed(rpc_failed("waiting for the outcome", e))),
    }
}

/// A short random pause, growing with the attempts, so racing clients spread out.
fn jitter(attempt: u32) -> Duration {
    let mut byte = [0u8; 1];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut byte);
    Duration::from_millis(20 + u64::from(byte[0]) * u64::from(attempt.min(8) + 1) / 2)
}

/// The `sign` call's return value, or its failure as one line.
fn success_value(outcome: &FinalExecutionOutcomeView) -> Result<Value, CliError> {
    match &outcome.status {
        FinalExecutionStatus::SuccessValue(bytes) => serde_json::from_slice(bytes)
            .map_err(|e| CliError::Failed(format!("the contract's response is not JSON: {e}"))),
        FinalExecutionStatus::Failure(e) => Err(CliError::Failed(format!(
            "sign failed: {}",
            failure_text(e)
        ))),
        other => Err(CliError::Failed(format!("sign has no result: {other:?}"))),
    }
}

/// The contract's own message when it has one (`signature request timed out`, ...).
fn failure_text(error: &TxExecutionError) -> String {
    if let TxExecutionError::ActionError(action) = error {
        if let ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(message)) =
            &action.kind
        {
            return message.clone();
        }
    }
    error.to_string()
}
