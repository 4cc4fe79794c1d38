//! The indexer: follows blocks over JSON-RPC and finds the `sign` requests in them.
//!
//! It follows the blocks at its client's finality (`[near] finality`, `near-final` unless set;
//! see the README, "Which blocks the indexer follows"). For each such block, in height
//! order, it reads the receipts of the block's chunks and takes
//! the action receipts to the contract with a `FunctionCall` to `sign`. Their arguments parse
//! with [`SignRequest`] (current and legacy forms); the receipt's `predecessor_id` is the caller,
//! and with the path it gives the tweak. Each request is then confirmed with the contract view
//! `is_pending` (a view at the same finality, so at the block being indexed or a later one),
//! and only confirmed ones go out.
//!
//! Why receipts and not the contract's `sign_request` event logs: NEAR's JSON-RPC has no
//! per-block access to execution outcomes (logs come only per transaction, by its hash, and the
//! node does not know the hashes). The receipt's arguments are the same data the event carries,
//! and `is_pending` confirms the request against contract state, so a refused `sign` (bad
//! deposit, not running, malformed arguments) never reaches the signers.
//!
//! On the devnet a receipt listed in a block's chunk executed in that block, so a followed
//! block's `sign` receipt is pending unless it already got its answer or failed. On NEAR a chunk lists
//! receipts that may execute a block or two later, so a request not yet pending is checked
//! again with each of the next [`RECHECK_BLOCKS`] blocks before it is given up; when it turns
//! pending it goes out with the height and entropy of the block that carried it, as on every
//! other node.
//!
//! Each block must name the block indexed before it as its parent. One that does not means a
//! fork replaced blocks already indexed (possible only when following `optimistic`): the
//! indexer steps back and indexes those heights again, sending their events again (requests
//! the receiver knows already are duplicates to it). Requests of a dropped block were sent
//! with that block's entropy; a node that saw the other fork has another, and such a request
//! fails to sign (its user sends it again). Following `near-final` avoids this.
//!
//! Progress is stored as a checkpoint (the last height whose events were all sent), so a
//! restarted indexer continues where it stopped: no block is skipped, none sent twice (as long
//! as the receiver handled what it got before the stop).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chainsig_primitives::{SignRequest, SignatureRequest, SignatureResponse};
use near_primitives::views::{ActionView, ReceiptEnumView, ReceiptView};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::chain::{BlockInfo, ChainClient, ChainError};
use crate::storage::Store;

/// Blocks during which a `sign` receipt that is not (yet) pending is checked again.
pub const RECHECK_BLOCKS: u64 = 5;
/// How many of the last indexed blocks are remembered to step back over a fork.
const REMEMBERED_BLOCKS: usize = 32;

/// A `sign` request seen in a followed block and confirmed pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The request; its tweak is derived from (`predecessor`, path).
    pub request: SignatureRequest,
    pub predecessor: String,
    /// The block whose chunk carried the `sign` receipt.
    pub height: u64,
    /// That block's `random_value`: public entropy for presignature rerandomization.
    pub entropy: [u8; 32],
}

#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// A confirmed request (sent before its block's [`ChainEvent::Block`]).
    Request(SeenRequest),
    /// A `respond` call to the contract, as its arguments say; whoever acts on it checks the
    /// signature (sent before its block's [`ChainEvent::Block`]).
    Responded {
        request: SignatureRequest,
        response: SignatureResponse,
    },
    /// A followed block, after all of its requests.
    Block(BlockInfo),
}

/// What one block holds for the node.
struct Findings {
    block: BlockInfo,
    /// Requests pending as of this block.
    requests: Vec<SeenRequest>,
    /// `respond` calls in this block.
    responses: Vec<(SignatureRequest, SignatureResponse)>,
}

#[derive(Debug, Clone)]
pub struct IndexerSettings {
    /// How long to wait before asking for a block not at the followed finality yet.
    pub poll_interval: Duration,
    /// The storage checkpoint name.
    pub checkpoint: &'static str,
}

impl Default for IndexerSettings {
    fn default() -> Self {
        IndexerSettings {
            poll_interval: Duration::from_millis(100),
            checkpoint: "indexer",
        }
    }
}

/// Back-off after an error: doubles from 100 ms up to 5 s.
struct Backoff(u32);

impl Backoff {
    fn reset(&mut self) {
        self.0 = 0;
    }

    fn next(&mut self) -> Duration {
        let d = Duration::from_millis(100).saturating_mul(1 << self.0.min(6));
        self.0 += 1;
        d.min(Duration::from_secs(5))
    }
}

/// Follows the blocks at the client's finality from the stored checkpoint + 1 (or from the
/// latest such block when there is no checkpoint). For every block it sends first the
/// [`ChainEvent::Request`]s found in it, then [`ChainEvent::Block`], and after sending
/// `Block(h)` stores `h` as the checkpoint. RPC and storage errors are logged at warn and
/// retried with back-off; no block is skipped because of an error. A block that does not
/// follow the last one indexed sends the indexer back over the replaced blocks (see the
/// module docs). Returns when the receiver is dropped.
pub async fn run(
    client: Arc<ChainClient>,
    store: Arc<Store>,
    events: mpsc::Sender<ChainEvent>,
    settings: IndexerSettings,
) {
    let mut backoff = Backoff(0);
    // The next height to process.
    let mut next = loop {
        if events.is_closed() {
            return;
        }
        match start_height(&client, &store, settings.checkpoint).await {
            Ok(h) => break h,
            Err(e) => {
                tracing::warn!(error = %e, "indexer: cannot find where to start; retrying");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    };
    let finality = client.finality();
    tracing::info!(height = next, %finality, "indexer: following blocks");
    backoff.reset();
    // The highest height known at the followed finality.
    let mut followed_height = 0u64;
    // Requests seen but not pending yet, with the last height at which they are checked.
    let mut unconfirmed: Vec<(SeenRequest, u64)> = Vec::new();
    // The last blocks indexed, oldest first: the next block must name the newest as parent.
    let mut recent: VecDeque<BlockInfo> = VecDeque::new();
    loop {
        if events.is_closed() {
            return;
        }
        if next > followed_height {
            match client.latest_block().await {
                Ok(b) => {
                    followed_height = b.height;
                    backoff.reset();
                }
                Err(e) => {
                    tracing::warn!(error = %e, %finality, "indexer: reading the latest block failed; retrying");
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            }
            if next > followed_height {
                tokio::time::sleep(settings.poll_interval).await;
                continue;
            }
        }
        match index_block(&client, next, recent.back(), &mut unconfirmed).await {
            Ok(Step::Replaced(block)) => {
                // The newest indexed block is not this block's parent: a fork replaced it.
                let Some(replaced) = recent.pop_back() else {
                    continue;
                };
                tracing::warn!(
                    %finality,
                    height = replaced.height,
                    replaced = %hex::encode(replaced.hash),
                    by_child_of = %hex::encode(block.prev_hash),
                    "indexer: a fork replaced an indexed block; indexing from its height again"
                );
                unconfirmed.retain(|(seen, _)| seen.height < replaced.height);
                next = replaced.height;
                // Not a hot loop should RPC servers disagree on the chain for a while.
                tokio::time::sleep(settings.poll_interval).await;
            }
            Ok(Step::Found(findings)) => {
                let block = findings.block;
                let requests = findings.requests.into_iter().map(ChainEvent::Request);
                let responses = findings
                    .responses
                    .into_iter()
                    .map(|(request, response)| ChainEvent::Responded { request, response });
                for event in requests
                    .chain(responses)
                    .chain(std::iter::once(ChainEvent::Block(block)))
                {
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
                store_checkpoint(&store, settings.checkpoint, block.height, &events).await;
                backoff.reset();
                recent.push_back(block);
                if recent.len() > REMEMBERED_BLOCKS {
                    recent.pop_front();
                }
                next = block.height + 1;
            }
            // A height at or below the followed one without a block: the chain skipped it.
            Ok(Step::Skipped) => {
                tracing::debug!(height = next, "indexer: no block at this height");
                next += 1;
            }
            Err(e) => {
                tracing::warn!(height = next, error = %e, "indexer: reading a block failed; retrying");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

async fn start_height(
    client: &ChainClient,
    store: &Store,
    checkpoint: &str,
) -> Result<u64, String> {
    match store.checkpoint(checkpoint).map_err(|e| e.to_string())? {
        Some(h) => Ok(h + 1),
        None => Ok(client
            .latest_block()
            .await
            .map_err(|e| e.to_string())?
            .height),
    }
}

/// Stores the checkpoint, retrying until it is stored (or nobody listens any more): a lost
/// checkpoint would only repeat blocks after a restart, but a store that fails is worth a
/// warning every time.
async fn store_checkpoint(
    store: &Store,
    name: &str,
    height: u64,
    events: &mpsc::Sender<ChainEvent>,
) {
    let mut backoff = Backoff(0);
    while let Err(e) = store.set_checkpoint(name, height) {
        tracing::warn!(height, error = %e, "indexer: storing the checkpoint failed; retrying");
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(backoff.next()).await;
    }
}

/// What indexing one height found.
enum Step {
    Found(Findings),
    /// The chain skipped the height.
    Skipped,
    /// The block there does not follow the last block indexed (given).
    Replaced(BlockInfo),
}

/// The block at `height` (at the followed finality), the requests that are pending as of it
/// (those it carries and earlier `unconfirmed` ones that turned pending) and the `respond`
/// calls in it. Requests not pending yet join `unconfirmed`. Nothing changes when the block's
/// parent is not `parent` (the last block indexed, if known).
async fn index_block(
    client: &ChainClient,
    height: u64,
    parent: Option<&BlockInfo>,
    unconfirmed: &mut Vec<(SeenRequest, u64)>,
) -> Result<Step, ChainError> {
    let Some((block, receipts)) = client.block_receipts(height).await? else {
        return Ok(Step::Skipped);
    };
    if parent.is_some_and(|p| p.hash != block.prev_hash) {
        return Ok(Step::Replaced(block));
    }
    // On an error the block is retried from scratch, with the list as it was.
    let previous = unconfirmed.clone();
    let mut candidates: Vec<(SeenRequest, u64)> = std::mem::take(unconfirmed);
    let contract = client.contract_id().as_str();
    let responses = receipts
        .iter()
        .flat_map(|r| responses(contract, r))
        .collect();
    for receipt in &receipts {
        for (predecessor, request) in sign_requests(contract, receipt) {
            let seen = SeenRequest {
                request,
                predecessor,
                height: block.height,
                entropy: block.random_value,
            };
            candidates.push((seen, block.height + RECHECK_BLOCKS));
        }
    }
    let mut pending = Vec::new();
    for (seen, last_check) in candidates {
        match is_pending(client, &seen.request).await {
            Ok(true) => pending.push(seen),
            Ok(false) if last_check > block.height => unconfirmed.push((seen, last_check)),
            Ok(false) => {
                tracing::debug!(height, predecessor = %seen.predecessor, "indexer: sign request not pending (answered or refused)");
            }
            Err(e) => {
                *unconfirmed = previous;
                return Err(e);
            }
        }
    }
    Ok(Step::Found(Findings {
        block,
        requests: pending,
        responses,
    }))
}

async fn is_pending(client: &ChainClient, request: &SignatureRequest) -> Result<bool, ChainError> {
    client
        .view("is_pending", &serde_json::json!({ "request": request }))
        .await
}

#[derive(Deserialize)]
struct SignArgs {
    request: SignRequest,
}

#[derive(Deserialize)]
struct RespondArgs {
    request: SignatureRequest,
    response: SignatureResponse,
}

/// The arguments of every call to `method` on `contract` in `receipt`.
fn calls<'a>(contract: &str, method: &str, receipt: &'a ReceiptView) -> Vec<&'a [u8]> {
    if receipt.receiver_id.as_str() != contract {
        return Vec::new();
    }
    let ReceiptEnumView::Action { actions, .. } = &receipt.receipt else {
        return Vec::new();
    };
    actions
        .iter()
        .filter_map(|action| match action {
            ActionView::FunctionCall {
                method_name, args, ..
            } if method_name == method => Some(args.as_slice()),
            _ => None,
        })
        .collect()
}

/// The `respond` calls to `contract` in `receipt`, as (request, response); malformed ones are
/// skipped (the contract refuses them).
pub fn responses(
    contract: &str,
    receipt: &ReceiptView,
) -> Vec<(SignatureRequest, SignatureResponse)> {
    calls(contract, "respond", receipt)
        .into_iter()
        .filter_map(|args| serde_json::from_slice::<RespondArgs>(args).ok())
        .map(|a| (a.request, a.response))
        .collect()
}

/// The `sign` calls to `contract` in `receipt`, as (predecessor, request). Malformed arguments
/// are skipped with a warning (the contract refused those calls anyway).
pub fn sign_requests(contract: &str, receipt: &ReceiptView) -> Vec<(String, SignatureRequest)> {
    let predecessor = receipt.predecessor_id.to_string();
    let mut found = Vec::new();
    for args in calls(contract, "sign", receipt) {
        let parsed = serde_json::from_slice::<SignArgs>(args)
            .map_err(|e| e.to_string())
            .and_then(|a| {
                a.request
                    .signature_request(&predecessor)
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(request) => found.push((predecessor.clone(), request)),
            Err(e) => tracing::warn!(
                receipt = %receipt.receipt_id,
                %predecessor,
                error = %e,
                "indexer: skipping a sign call with malformed arguments"
            ),
        }
    }
    found
}
