//! The runs the coordinator starts, each as its own task: key generation, triple batches,
//! presignatures and signatures, plus the transactions that follow them. A run reads and
//! writes storage itself and reports back only what the coordinator's bookkeeping needs
//! ([`Done`]).
//!
//! Use-once: the inputs a run consumes (two triples, a presignature) are taken from storage,
//! which commits their removal, before the run sends its first message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::triples::triple_limits;
use chainsig_mpc::{KeyShare, ParticipantId, SignArgs};
use chainsig_primitives::{Payload, SignatureRequest, SignatureResponse};
use serde_json::json;

use crate::chain::{ChainClient, ChainError};
use crate::config::TimeoutSection;
use crate::http::Metrics;
use crate::jobs::{Announcement, Job};
use crate::leader::RequestId;
use crate::mesh::message::{InstanceId, MeshMessage};
use crate::mesh::network::Mesh;
use crate::runner::{self, Router};
use crate::storage::{AssetId, Store};

/// Gas for the node's own transactions (`respond` burns about 5.4 TGas, votes under 2).
const RESPOND_TGAS: u64 = 50;
const VOTE_TGAS: u64 = 30;
/// A run gives up once a participant has been down this long: the request or asset is
/// retried with live participants. The mesh says a peer is down the moment its connection
/// closes (or after its peer timeout of silence); the grace covers a peer that only redials,
/// which is back within a handshake.
const PEER_DOWN_GRACE: Duration = Duration::from_millis(300);

/// What every run needs, for the node's lifetime.
pub struct Shared {
    pub account: String,
    pub chain: Arc<ChainClient>,
    pub store: Arc<Store>,
    pub router: Router,
    pub metrics: Arc<Metrics>,
    pub timeouts: TimeoutSection,
}

/// One epoch's signing set as this node takes part in it.
#[derive(Clone)]
pub struct Session {
    pub epoch: u64,
    pub me: ParticipantId,
    /// All current participants, sorted.
    pub participants: Vec<ParticipantId>,
    pub threshold: usize,
    pub key: Arc<KeyShare>,
    pub mesh: Arc<Mesh>,
}

impl Session {
    /// The session's participants the mesh hears from (the mesh may also carry members of
    /// another epoch during a reshare), this node included; sorted.
    pub fn alive_participants(&self) -> Vec<ParticipantId> {
        self.mesh
            .alive()
            .into_iter()
            .filter(|p| self.participants.binary_search(p).is_ok())
            .collect()
    }
}

/// Why a run failed, and whom it points at (see [`chainsig_mpc::ProtocolError::blamed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub message: String,
    pub blame: Vec<ParticipantId>,
    /// A new run may start at once: the failure points at someone (left out of the next
    /// one; a participant that lacked its share and declined, say).
    pub retry_now: bool,
}

impl From<String> for RunError {
    fn from(message: String) -> Self {
        Self {
            message,
            blame: Vec::new(),
            retry_now: false,
        }
    }
}

impl From<&str> for RunError {
    fn from(message: &str) -> Self {
        Self::from(message.to_string())
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A finished run, as the coordinator sees it.
#[derive(Debug)]
pub enum Done {
    /// A key generation (epoch 0) or reshare run of `epoch`'s key event ended, its share
    /// stored on success.
    KeyRun {
        epoch: u64,
        attempt: u64,
        result: Result<(), String>,
    },
    /// A transaction (vote, join) finished; the next block's state shows its effect.
    Transaction,
    Triples {
        epoch: u64,
        mine: bool,
        owner: ParticipantId,
        first_id: AssetId,
        count: u64,
        set: Vec<ParticipantId>,
        /// `Err` with whom the failure points at.
        result: Result<(), Vec<ParticipantId>>,
    },
    Presignature {
        epoch: u64,
        mine: bool,
        owner: ParticipantId,
        id: AssetId,
        set: Vec<ParticipantId>,
        result: Result<(), Vec<ParticipantId>>,
    },
    Signed {
        request: RequestId,
        outcome: SignOutcome,
    },
    /// A run this node joined as a follower ended.
    Followed,
}

#[derive(Debug)]
pub enum SignOutcome {
    /// This node's `respond` landed.
    Responded {
        latency: Duration,
    },
    /// The contract no longer waits for it (someone else answered, or it timed out).
    NotPending,
    /// The presignature was not used (the request turned out answered before it was taken).
    Unused {
        presignature: AssetId,
        set: Vec<ParticipantId>,
    },
    Failed(RunError),
}

fn ms(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms)
}

/// Tells `set` (but this node) about a run.
pub fn announce(mesh: &Mesh, me: ParticipantId, set: &[ParticipantId], body: &[u8]) {
    let message = MeshMessage::Job(body.to_vec());
    for &peer in set.iter().filter(|&&p| p != me) {
        if let Err(error) = mesh.send(peer, &message) {
            tracing::warn!(%peer, %error, "job announcement not sent");
        }
    }
}

/// A key generation run as this node takes part in it.
pub struct KeygenRun {
    pub me: ParticipantId,
    pub participants: Vec<ParticipantId>,
    pub threshold: usize,
    pub attempt: u64,
    pub instance: InstanceId,
}

/// Key generation among the initial candidates; the share is stored under epoch 0 with the
/// attempt that made it.
pub async fn keygen(shared: Arc<Shared>, mesh: Arc<Mesh>, run: KeygenRun) -> Done {
    let result = async {
        let limits = key_limits(run.participants.len()).with_timeout(ms(shared.timeouts.keygen_ms));
        let protocol = chainsig_mpc::keygen(&run.participants, run.me, run.threshold, limits);
        let share = drive(
            &shared.router,
            &mesh,
            run.me,
            &run.participants,
            run.instance,
            protocol,
        )
        .await
        .map_err(|e| e.message)?;
        shared
            .store
            .put_key_share(0, run.attempt, &share)
            .map_err(|e| e.to_string())
    }
    .await;
    Done::KeyRun {
        epoch: 0,
        attempt: run.attempt,
        result,
    }
}

/// A reshare as this node takes part in it.
pub struct ReshareRun {
    pub me: ParticipantId,
    /// The old participants whose shares rebuild the key (all in `participants`).
    pub contributors: Vec<ParticipantId>,
    pub participants: Vec<ParticipantId>,
    pub threshold: usize,
    /// This node's share of the old epoch; `None` for a newcomer.
    pub old_share: Option<KeyShare>,
    pub public_key: chainsig_primitives::k256::AffinePoint,
    pub new_epoch: u64,
    pub attempt: u64,
    pub instance: InstanceId,
}

/// Reshares the root key to the new participants; the new share is stored under the new
/// epoch with the attempt that made it. Nothing of the old epoch is touched: it keeps signing
/// until the contract runs at the new epoch, and goes only after that (see
/// [`Store::prune_to_epoch`]).
pub async fn reshare(shared: Arc<Shared>, mesh: Arc<Mesh>, run: ReshareRun) -> Done {
    let result = async {
        let limits = key_limits(run.participants.len()).with_timeout(ms(shared.timeouts.keygen_ms));
        let protocol = chainsig_mpc::reshare(
            &run.contributors,
            run.threshold,
            &run.participants,
            run.threshold,
            run.me,
            run.old_share.as_ref(),
            run.public_key,
            limits,
        );
        let share = drive(
            &shared.router,
            &mesh,
            run.me,
            &run.participants,
            run.instance,
            protocol,
        )
        .await
        .map_err(|e| e.message)?;
        shared
            .store
            .put_key_share(run.new_epoch, run.attempt, &share)
            .map_err(|e| e.to_string())
    }
    .await;
    Done::KeyRun {
        epoch: run.new_epoch,
        attempt: run.attempt,
        result,
    }
}

/// Runs `protocol` (or reports the error that kept it from being built) among `participants`
/// over the mesh, giving up once one of them is down; errors as text, for the log, with
/// whom they point at.
async fn drive<P: chainsig_mpc::Protocol>(
    router: &Router,
    mesh: &Mesh,
    me: ParticipantId,
    participants: &[ParticipantId],
    instance: InstanceId,
    protocol: Result<P, chainsig_mpc::ProtocolError>,
) -> Result<P::Output, RunError> {
    let protocol = protocol.map_err(|e| e.to_string())?;
    runner::run_while_up(
        protocol,
        instance,
        me,
        participants,
        mesh,
        router,
        PEER_DOWN_GRACE,
    )
    .await
    .map_err(|e| {
        let blame = e.blamed();
        RunError {
            message: e.to_string(),
            retry_now: !blame.is_empty(),
            blame,
        }
    })
}

/// Tells `to`, who announced a run this node cannot take part in, so that the run ends now
/// rather than at its timeout.
pub fn decline(mesh: &Mesh, to: ParticipantId, instance: InstanceId) {
    if let Err(error) = mesh.send(to, &MeshMessage::Decline { instance }) {
        tracing::debug!(peer = %to, %error, "decline not sent");
    }
}

/// Sends a contract call as this node and logs how it went.
pub async fn transact(shared: Arc<Shared>, method: &'static str, args: serde_json::Value) -> Done {
    match shared.chain.call(method, &args, VOTE_TGAS, 0).await {
        Ok(_) => tracing::info!(method, "transaction landed"),
        Err(error) => tracing::warn!(method, %error, "transaction failed"),
    }
    Done::Transaction
}

/// A triple batch, as owner or follower; every participant stores the triples under the
/// owner's ids.
pub async fn triples(shared: Arc<Shared>, session: Session, run: Announcement, mine: bool) -> Done {
    let instance = run.instance();
    let Job::Triples {
        owner,
        first_id,
        count,
        participants,
        ..
    } = run.job
    else {
        unreachable!("triples() runs triple jobs")
    };
    if mine {
        announce(&session.mesh, session.me, &participants, &run.body);
    }
    let result = async {
        let limits = triple_limits(participants.len()).with_timeout(ms(shared.timeouts.triple_ms));
        let protocol = chainsig_mpc::generate_triples(
            &participants,
            session.me,
            session.threshold,
            count as usize,
            limits,
        );
        let triples = drive(
            &shared.router,
            &session.mesh,
            session.me,
            &participants,
            instance,
            protocol,
        )
        .await?;
        let numbered: Vec<_> = (first_id..).zip(triples).collect();
        shared
            .store
            .put_triples(owner, &numbered)
            .map_err(|e| RunError::from(e.to_string()))
    }
    .await;
    if let Err(error) = &result {
        tracing::warn!(%owner, first_id, count, %error, "triple batch failed");
    }
    Done::Triples {
        epoch: session.epoch,
        mine,
        owner,
        first_id,
        count: u64::from(count),
        set: participants,
        result: result.map_err(|e| e.blame),
    }
}

/// A presignature from two of the owner's triples (taken from storage first).
pub async fn presignature(
    shared: Arc<Shared>,
    session: Session,
    run: Announcement,
    mine: bool,
) -> Done {
    let instance = run.instance();
    let Job::Presignature {
        owner,
        id,
        triples,
        participants,
        ..
    } = run.job
    else {
        unreachable!("presignature() runs presignature jobs")
    };
    let result = async {
        let [t0, t1] = shared
            .store
            .take_triples(owner, triples)
            .inspect_err(|_| {
                if !mine {
                    decline(&session.mesh, owner, instance);
                }
            })
            .map_err(|e| e.to_string())?;
        if mine {
            announce(&session.mesh, session.me, &participants, &run.body);
        }
        let limits = presign_limits().with_timeout(ms(shared.timeouts.presign_ms));
        let protocol = chainsig_mpc::presign(&participants, &session.key, t0, t1, limits);
        let presignature = drive(
            &shared.router,
            &session.mesh,
            session.me,
            &participants,
            instance,
            protocol,
        )
        .await?;
        shared
            .store
            .put_presignature(session.epoch, owner, id, &presignature)
            .map_err(|e| RunError::from(e.to_string()))
    }
    .await;
    if let Err(error) = &result {
        tracing::warn!(%owner, id, %error, "presignature failed");
    }
    Done::Presignature {
        epoch: session.epoch,
        mine,
        owner,
        id,
        set: participants,
        result: result.map_err(|e| e.blame),
    }
}

/// What a signing run needs to know about its request.
pub struct SignInputs {
    pub request: SignatureRequest,
    pub request_id: RequestId,
    pub height: u64,
    pub entropy: [u8; 32],
    pub seen_at: Instant,
    pub answered: Answered,
}

/// Fires when the request a signature run serves is answered on chain (by this run or
/// another): a run still in its protocol then ends, instead of waiting out its timeout on a
/// peer that has dropped the request.
pub struct Answered(tokio::sync::watch::Receiver<bool>);

impl Answered {
    pub fn new(signal: tokio::sync::watch::Receiver<bool>) -> Self {
        Self(signal)
    }

    /// Resolves once the request is answered; never, if nobody will say so.
    async fn wait(&mut self) {
        if self.0.wait_for(|answered| *answered).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs a signing protocol until it ends or its request is answered elsewhere (`None`).
async fn unless_answered<T>(
    answered: &mut Answered,
    run: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        result = run => Some(result),
        () = answered.wait() => None,
    }
}

fn sign_args(inputs: &SignInputs) -> Result<SignArgs, String> {
    let Payload::Ecdsa(payload) = inputs.request.payload;
    Ok(SignArgs {
        payload,
        tweak: inputs.request.tweak,
        entropy: inputs.entropy,
    })
}

/// Leads one signature: (for a backup leader, first checks the request still waits), takes
/// the presignature, announces, signs, and sends `respond` with the verified signature.
pub async fn lead_signature(
    shared: Arc<Shared>,
    session: Session,
    mut inputs: SignInputs,
    presignature: AssetId,
    set: Vec<ParticipantId>,
    check_pending_first: bool,
) -> Done {
    let request = inputs.request_id;
    if check_pending_first {
        match is_pending(&shared.chain, &inputs.request).await {
            Ok(false) => {
                return Done::Signed {
                    request,
                    outcome: SignOutcome::NotPending,
                }
            }
            Ok(true) => {}
            Err(error) => {
                tracing::warn!(%error, "is_pending check failed");
                return Done::Signed {
                    request,
                    outcome: SignOutcome::Unused { presignature, set },
                };
            }
        }
    }
    let outcome = match sign_and_respond(&shared, &session, &mut inputs, presignature, set).await {
        Ok(outcome) => outcome,
        Err(error) => SignOutcome::Failed(error),
    };
    Done::Signed { request, outcome }
}

async fn sign_and_respond(
    shared: &Shared,
    session: &Session,
    inputs: &mut SignInputs,
    presignature_id: AssetId,
    set: Vec<ParticipantId>,
) -> Result<SignOutcome, RunError> {
    let presignature = shared
        .store
        .take_presignature(session.epoch, session.me, presignature_id)
        .map_err(|e| e.to_string())?;
    let job = Job::Sign {
        epoch: session.epoch,
        leader: session.me,
        presignature: presignature_id,
        request: inputs.request,
        height: inputs.height,
        entropy: inputs.entropy,
        participants: set.clone(),
    };
    let run = Announcement::new(job);
    announce(&session.mesh, session.me, &set, &run.body);
    let limits = sign_limits().with_timeout(ms(shared.timeouts.sign_ms));
    let protocol = chainsig_mpc::sign(
        &session.key,
        presignature,
        session.me,
        &sign_args(inputs)?,
        limits,
    );
    let run = drive(
        &shared.router,
        &session.mesh,
        session.me,
        &set,
        run.instance(),
        protocol,
    );
    let Some(result) = unless_answered(&mut inputs.answered, run).await else {
        return Ok(SignOutcome::NotPending);
    };
    let signature = result?.ok_or("the leader's signing run ended without a signature")?;
    let args = json!({
        "request": inputs.request,
        "response": SignatureResponse::Secp256k1(signature),
    });
    match shared.chain.call("respond", &args, RESPOND_TGAS, 0).await {
        Ok(_) => Ok(SignOutcome::Responded {
            latency: inputs.seen_at.elapsed(),
        }),
        Err(ChainError::Failed(message)) if message.contains("pending") => {
            Ok(SignOutcome::NotPending)
        }
        Err(error) => Err(format!("respond: {error}").into()),
    }
}

/// Joins a signature another node leads (the presignature is taken first).
pub async fn follow_signature(
    shared: Arc<Shared>,
    session: Session,
    mut inputs: SignInputs,
    leader: ParticipantId,
    presignature_id: AssetId,
    set: Vec<ParticipantId>,
    instance: InstanceId,
) -> Done {
    let result = async {
        let presignature = shared
            .store
            .take_presignature(session.epoch, leader, presignature_id)
            .inspect_err(|_| decline(&session.mesh, leader, instance))
            .map_err(|e| e.to_string())?;
        let limits = sign_limits().with_timeout(ms(shared.timeouts.sign_ms));
        let protocol = chainsig_mpc::sign(
            &session.key,
            presignature,
            leader,
            &sign_args(&inputs)?,
            limits,
        );
        let run = drive(
            &shared.router,
            &session.mesh,
            session.me,
            &set,
            instance,
            protocol,
        );
        // Answered without this node: nothing left to do.
        unless_answered(&mut inputs.answered, run)
            .await
            .unwrap_or(Ok(None))
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(%leader, presignature_id, %error, "signature (as follower) failed");
    }
    Done::Followed
}

/// Whether the contract still waits for `request`.
pub async fn is_pending(
    chain: &ChainClient,
    request: &SignatureRequest,
) -> Result<bool, ChainError> {
    chain
        .view("is_pending", &json!({ "request": request }))
        .await
}
