//! The coordinator: one loop that maps what the chain says to what this node does. Each
//! block it re-reads the contract's `state()` and moves to the matching node state (join,
//! generate and vote the key, serve, reshare); between blocks it keeps the stockpile filled,
//! leads the sign requests that fall to it and joins the runs peers announce.
//!
//! During a reshare the old participants keep serving the old epoch while the new set runs
//! the reshare; the switch to the new epoch happens when the contract says so
//! ([`epochs`]).
//!
//! The loop itself never waits on a protocol: runs are tasks ([`crate::tasks`]) that report
//! back through [`Done`]. Asset generation runs on its own runtime so that signing, the mesh
//! and the indexer never queue behind a triple batch.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chainsig_mpc::ParticipantId;
use chainsig_primitives::{
    derive_public_key, Payload, PublicKey, SignatureRequest, SignatureResponse,
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::assets::OwnedAssets;
use crate::config::Config;
use crate::contract_state::{self, Attempt, ContractState, Member};
use crate::health::{Health, Ready};
use crate::http::NodeStatus;
use crate::indexer::{ChainEvent, SeenRequest};
use crate::jobs::{Announcement, Job, JobError, Membership};
use crate::leader::request_id;
use crate::mesh::message::PeerStatus;
use crate::mesh::network::{Mesh, MeshSettings, PeerInfo};
use crate::mesh::{Endpoint, PeerDirectory};
use crate::requests::RequestBook;
use crate::stockpile::{Phase, Start, StockLevels, Stockpile};
use crate::tasks::{self, Done, Session, Shared, SignInputs, SignOutcome};

use epochs::Retiring;
use key_setup::KeyRun;

mod epochs;
mod following;
mod generations;
mod key_setup;
mod serving;

const TICK: Duration = Duration::from_millis(50);
/// How long an announcement may wait for what it needs (the request seen by this node's own
/// indexer, or the triples/presignature stored by a run that is just finishing).
const ANNOUNCEMENT_PATIENCE: Duration = Duration::from_secs(15);
/// Announcements kept waiting at most.
const MAX_WAITING: usize = 4096;
/// Blocks between `join` attempts while not yet a candidate.
const JOIN_EVERY_BLOCKS: u64 = 50;

/// A job announcement as it arrives: sender and bytes.
type PeerJob = (ParticipantId, Vec<u8>);

/// What the node is given at start.
pub struct Setup {
    pub config: Config,
    /// `ed25519:…` of the node's account key, for `join`.
    pub sign_public_key: String,
    pub endpoint: Arc<Endpoint>,
    pub directory: PeerDirectory,
    pub status: Arc<RwLock<NodeStatus>>,
    /// Where asset generation runs.
    pub generation: Handle,
}

struct MeshHandle {
    me: ParticipantId,
    peers: Vec<PeerInfo>,
    mesh: Arc<Mesh>,
}

/// How long a node that ran out of presignatures stays a leader: a refill from its triples
/// takes milliseconds, while every peer changing its mind about who leads (the moment one
/// uses its last presignature for a request the others are about to lead too) would have
/// two nodes sign the same request.
const DRY_GRACE: Duration = Duration::from_secs(1);

/// Whether this node leads signatures in an epoch: from its first presignature of the epoch,
/// until it has had none for [`DRY_GRACE`].
#[derive(Debug, Clone, Copy, Default)]
struct LeaderState {
    epoch: Option<u64>,
    leads: bool,
    dry_since: Option<Instant>,
}

impl LeaderState {
    /// Updates for `presignatures` usable now in `epoch`; returns whether this node leads.
    fn update(&mut self, epoch: Option<u64>, presignatures: usize, now: Instant) -> bool {
        if self.epoch != epoch {
            *self = LeaderState {
                epoch,
                ..Default::default()
            };
        }
        if epoch.is_none() {
            return false;
        }
        if presignatures > 0 {
            self.leads = true;
            self.dry_since = None;
        } else if self.leads {
            let since = *self.dry_since.get_or_insert(now);
            self.leads = now.duration_since(since) < DRY_GRACE;
        }
        self.leads
    }
}

/// A peer's announcement waiting for this node to be ready for it.
struct Waiting {
    from: ParticipantId,
    run: Announcement,
    until: Instant,
    /// What it waits for, for the log if it waits too long.
    why: &'static str,
}

impl Waiting {
    fn because(mut self, why: &'static str) -> Option<Self> {
        self.why = why;
        Some(self)
    }
}

#[derive(Default)]
struct InFlight {
    /// Triple and presignature runs, this node's own and those it follows.
    generations: generations::Generations,
    /// Signature runs (led or followed) by request: its answer on chain ends their protocol
    /// at once, rather than leaving a partner waiting for a peer that has moved on.
    signatures: HashMap<crate::leader::RequestId, tokio::sync::watch::Sender<bool>>,
    transaction: bool,
}

impl InFlight {
    /// A signal that `request` was answered, for a signature run to end on.
    fn answered_signal(&mut self, request: crate::leader::RequestId) -> tasks::Answered {
        self.signatures.retain(|_, signal| !signal.is_closed());
        let signal = self
            .signatures
            .entry(request)
            .or_insert_with(|| tokio::sync::watch::channel(false).0);
        tasks::Answered::new(signal.subscribe())
    }

    /// Tells the signature runs for `request` that it was answered; returns how many there
    /// were.
    fn stop_signatures(&mut self, request: &crate::leader::RequestId) -> usize {
        let Some(signal) = self.signatures.remove(request) else {
            return 0;
        };
        let runs = signal.receiver_count();
        let _ = signal.send(true);
        runs
    }
}

pub struct Coordinator {
    shared: Arc<Shared>,
    setup: Setup,
    state: Option<ContractState>,
    state_json: serde_json::Value,
    height: u64,
    last_join: Option<u64>,
    mesh: Option<MeshHandle>,
    /// The epoch this node signs in now.
    session: Option<Session>,
    /// The epoch a reshare under way switches to, once this node holds its share from the
    /// current attempt: it makes that epoch's presignatures ahead of the switch.
    upcoming: Option<Session>,
    /// The reshare attempt whose share the upcoming session holds.
    upcoming_attempt: u64,
    /// Whether this node leads signatures now (see [`LeaderState`]).
    leading: std::cell::Cell<LeaderState>,
    /// The epoch before, for a moment after a switch: peers' signatures begun in it finish.
    retiring: Option<Retiring>,
    /// The epoch whose predecessors' key material is gone from storage.
    pruned_epoch: Option<u64>,
    /// Why this node cannot do its part, if it cannot (shown on `/health`).
    problem: Option<String>,
    /// The key generation or reshare run under way.
    key_run: Option<KeyRun>,
    assets: Option<OwnedAssets>,
    stockpile: Stockpile,
    book: RequestBook,
    /// Who is caught up and not failing runs.
    health: Health,
    in_flight: InFlight,
    waiting: Vec<Waiting>,
    done: (mpsc::Sender<Done>, mpsc::Receiver<Done>),
    jobs: (mpsc::Sender<PeerJob>, mpsc::Receiver<PeerJob>),
}

impl Coordinator {
    pub fn new(shared: Arc<Shared>, setup: Setup) -> Self {
        let stockpile = Stockpile::new(setup.config.stockpile.clone());
        Self {
            shared,
            setup,
            state: None,
            state_json: serde_json::Value::Null,
            height: 0,
            last_join: None,
            mesh: None,
            session: None,
            upcoming: None,
            upcoming_attempt: 0,
            leading: std::cell::Cell::new(LeaderState::default()),
            retiring: None,
            pruned_epoch: None,
            problem: None,
            key_run: None,
            assets: None,
            stockpile,
            book: RequestBook::default(),
            health: Health::default(),
            in_flight: InFlight::default(),
            waiting: Vec::new(),
            done: mpsc::channel(1024),
            jobs: mpsc::channel(4096),
        }
    }

    /// Runs until the indexer stops.
    pub async fn run(mut self, mut events: mpsc::Receiver<ChainEvent>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(ChainEvent::Block(block)) => self.on_block(block.height).await,
                    Some(ChainEvent::Request(seen)) => self.on_request(seen),
                    Some(ChainEvent::Responded { request, response }) => {
                        self.on_responded(&request, &response)
                    }
                    None => return,
                },
                Some(done) = self.done.1.recv() => self.on_done(done),
                Some((from, body)) = self.jobs.1.recv() => self.on_announcement(from, body),
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    // ----- chain -----

    async fn on_block(&mut self, height: u64) {
        self.height = height;
        let expired = self.book.expire(height);
        if expired > 0 {
            tracing::warn!(expired, "requests passed the contract's timeout unanswered");
        }
        match self
            .shared
            .chain
            .view::<serde_json::Value>("state", &json!({}))
            .await
        {
            Ok(value) => match serde_json::from_value::<ContractState>(value.clone()) {
                Ok(state) => {
                    self.state_json = value;
                    self.apply_state(&state).await;
                    self.state = Some(state);
                }
                Err(error) => tracing::warn!(%error, "contract state does not parse"),
            },
            Err(error) => tracing::warn!(%error, "cannot read the contract state"),
        }
        self.publish_status();
    }

    fn on_request(&mut self, seen: SeenRequest) {
        if !self.book.insert(seen, Instant::now()) {
            return;
        }
        self.shared.metrics.requests_seen.inc();
        // Start at once rather than on the next tick: latency is what users see. A leader's
        // announcement for this request may already be waiting for it.
        self.retry_waiting();
        if let Some(session) = self.session.clone() {
            let ready = self.ready(&session);
            if !ready.behind {
                self.lead_due_requests(&session, &ready.participants);
            }
        }
    }

    /// A `respond` on chain ends the request here if its signature verifies under the
    /// request's derived key (then the contract took it, or had already taken another): no
    /// peer's word is needed, and no extra view call.
    ///
    /// Checked against the contract's root key, not this node's share: a node that does not
    /// serve yet (a newcomer during its reshare) must forget answered requests too, or it
    /// would lead them once it serves.
    fn on_responded(&mut self, request: &SignatureRequest, response: &SignatureResponse) {
        let Some(root) = self.state.as_ref().and_then(ContractState::public_key) else {
            return;
        };
        let SignatureResponse::Secp256k1(signature) = response;
        let Payload::Ecdsa(payload) = &request.payload;
        let verifies = derive_public_key(root.as_affine(), &request.tweak)
            .and_then(PublicKey::from_affine)
            .and_then(|key| signature.verify(&key, payload));
        let id = request_id(request);
        if verifies.is_err() {
            return;
        }
        let runs = self.in_flight.stop_signatures(&id);
        if self.book.remove(&id).is_some() || runs > 0 {
            tracing::debug!(request = %hex::encode(&id[..4]), runs, "answered on chain");
        }
    }

    async fn apply_state(&mut self, state: &ContractState) {
        let account = self.shared.account.clone();
        match state {
            ContractState::NotInitialized => {}
            ContractState::Initializing {
                candidates,
                threshold,
                pk_votes,
                key_event,
            } => {
                let Some(me) = contract_state::find(candidates, &account) else {
                    return;
                };
                let me = me.participant();
                self.ensure_mesh(me, candidates).await;
                let voted = pk_votes.iter().any(|v| v.voters.contains(&account));
                self.keygen_step(me, candidates, *threshold, key_event.attempt, voted);
            }
            ContractState::Running { .. } => self.apply_running(state).await,
            ContractState::Resharing { .. } => self.apply_resharing(state).await,
        }
    }

    /// Running: serve the epoch as a participant, or leave (and ask to join) as an outsider.
    async fn apply_running(&mut self, state: &ContractState) {
        let account = self.shared.account.clone();
        let ContractState::Running {
            epoch,
            participants,
            threshold,
            public_key,
            candidates,
        } = state
        else {
            return;
        };
        self.end_key_run("the key event is over");
        self.upcoming = None;
        match contract_state::find(participants, &account) {
            Some(me) => {
                let me = me.participant();
                self.ensure_mesh(me, participants).await;
                self.ensure_session(*epoch, me, participants, *threshold, public_key);
                self.prune_when_settled(*epoch, participants, *threshold);
            }
            None => {
                self.leave_network();
                let candidate = candidates.iter().any(|c| c.account_id == account);
                if !candidate {
                    self.join();
                }
            }
        }
    }

    /// Resharing: the old set serves its epoch, the new set reshares and stocks the next.
    async fn apply_resharing(&mut self, state: &ContractState) {
        let account = self.shared.account.clone();
        let ContractState::Resharing {
            old_epoch,
            new_epoch,
            old_participants,
            new_participants,
            threshold,
            public_key,
            key_event,
            finished_votes,
        } = state
        else {
            return;
        };
        let old_me = contract_state::find(old_participants, &account);
        let new_me = contract_state::find(new_participants, &account);
        let Some(me) = old_me.or(new_me).map(Member::participant) else {
            return;
        };
        // Both sets talk: the old one signs, the new one reshares.
        let mut members = old_participants.clone();
        members.extend(new_participants.iter().cloned());
        self.ensure_mesh(me, &members).await;
        if old_me.is_some() {
            self.ensure_session(*old_epoch, me, old_participants, *threshold, public_key);
        } else {
            self.stop_serving();
        }
        if new_me.is_some() {
            let voted = finished_votes.contains(&account);
            self.reshare_step(me, *new_epoch, key_event, voted);
            let attempt = key_event.attempt.id;
            self.ensure_upcoming(
                *new_epoch,
                attempt,
                new_participants,
                *threshold,
                public_key,
            );
        }
    }

    /// Asks to become a candidate, unless this node was a participant and was voted out (its
    /// operator can then join it again with a fresh data directory).
    fn join(&mut self) {
        if self.served_before() {
            if self.last_join.is_none() {
                tracing::info!(
                    "voted out of the network: not asking to join again (a fresh data \
                     directory makes this node a new candidate)"
                );
                self.last_join = Some(self.height);
            }
            return;
        }
        if self.in_flight.transaction
            || self
                .last_join
                .is_some_and(|at| self.height < at + JOIN_EVERY_BLOCKS)
        {
            return;
        }
        self.last_join = Some(self.height);
        self.in_flight.transaction = true;
        let args = json!({
            "url": self.setup.config.mesh.public_address,
            "tls_public_key": contract_state::format_tls_key(&self.setup.endpoint.public_key()),
            "sign_public_key": self.setup.sign_public_key,
        });
        tracing::info!("not a participant or candidate: sending join");
        self.spawn(tasks::transact(self.shared.clone(), "join", args));
    }

    /// Connects to `members`. The mesh follows membership changes in place, so the runs
    /// among members who stay are not disturbed; only a new participant id for this node
    /// starts it anew.
    async fn ensure_mesh(&mut self, me: ParticipantId, members: &[Member]) {
        let mut peers: Vec<PeerInfo> = members.iter().filter_map(Member::peer).collect();
        peers.sort_unstable_by_key(|p| p.id);
        peers.dedup_by_key(|p| p.id);
        if let Some(current) = self.mesh.as_mut().filter(|m| m.me == me) {
            if current.peers != peers {
                self.setup
                    .directory
                    .replace(peers.iter().map(|p| (p.tls_key, p.id)));
                current.mesh.set_peers(peers.clone());
                tracing::info!(me = %me, peers = peers.len(), "mesh: members changed");
                current.peers = peers;
            }
            return;
        }
        // The old mesh holds the listening socket: stop it first (runs still holding it fail
        // their sends and end).
        if let Some(old) = self.mesh.take() {
            old.mesh.stop();
        }
        self.session = None;
        self.retiring = None;
        self.setup
            .directory
            .replace(peers.iter().map(|p| (p.tls_key, p.id)));
        let listener = match TcpListener::bind(self.setup.config.mesh.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, listen = %self.setup.config.mesh.listen, "mesh: cannot listen yet");
                return;
            }
        };
        let (mesh, inbox) = Mesh::start(
            self.setup.endpoint.clone(),
            listener,
            me,
            peers.clone(),
            MeshSettings::default(),
        );
        tokio::spawn(
            self.shared
                .router
                .clone()
                .route_inbox(inbox, self.jobs.0.clone()),
        );
        tracing::info!(me = %me, peers = peers.len(), "mesh up");
        self.mesh = Some(MeshHandle {
            me,
            peers,
            mesh: Arc::new(mesh),
        });
    }

    // ----- finished runs -----

    fn on_done(&mut self, done: Done) {
        match done {
            Done::KeyRun {
                epoch,
                attempt,
                result,
            } => self.on_key_run_done(epoch, attempt, result),
            Done::Transaction => self.in_flight.transaction = false,
            Done::Triples {
                mine,
                owner,
                first_id,
                count,
                set,
                result,
                ..
            } => {
                let running = self.in_flight.generations.finish(owner, first_id).is_some();
                let ok = result.is_ok();
                tracing::debug!(%owner, first_id, count, ok, running, "triple batch ended");
                if mine && running {
                    self.record_run(&set, &result);
                }
                // Triples do not depend on the key: ones begun in the epoch before count if
                // everyone who shares them is still a participant.
                if let (true, true, Some(assets)) = (
                    mine && ok && running,
                    self.keeps_triples(&set),
                    self.assets.as_mut(),
                ) {
                    assets.add_triples(first_id, count, &set);
                }
            }
            Done::Presignature {
                epoch,
                mine,
                owner,
                id,
                set,
                result,
            } => {
                let running = self.in_flight.generations.finish(owner, id).is_some();
                let current = self.is_current(epoch);
                let ok = result.is_ok();
                if mine && running {
                    self.record_run(&set, &result);
                }
                tracing::debug!(epoch, %owner, id, ok, running, current, "presignature run ended");
                if let (true, Some(assets)) = (mine && ok && running, self.assets.as_mut()) {
                    // Of this epoch, or of the one a reshare is about to switch to.
                    if current {
                        assets.add_presignature(id, &set);
                    } else {
                        assets.add_upcoming_presignature(epoch, id, &set);
                    }
                }
            }
            Done::Signed { request, outcome } => self.on_signed(request, outcome),
            Done::Followed => {}
        }
        self.publish_status();
    }

    /// What a run this node started says about its participants' health.
    fn record_run(&mut self, set: &[ParticipantId], result: &Result<(), Vec<ParticipantId>>) {
        match result {
            Ok(()) => self.health.run_succeeded(set),
            Err(blamed) => {
                let me = self.mesh.as_ref().map_or(ParticipantId(u32::MAX), |m| m.me);
                self.health.run_failed(me, blamed, Instant::now());
            }
        }
    }

    // ----- plumbing -----

    /// Whether a presignature run of `epoch` still counts: presignatures end with their epoch.
    fn is_current(&self, epoch: u64) -> bool {
        self.session.as_ref().is_some_and(|s| s.epoch == epoch)
    }

    /// Whether triples shared by `set` are usable in the current epoch.
    fn keeps_triples(&self, set: &[ParticipantId]) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| set.iter().all(|p| s.participants.binary_search(p).is_ok()))
    }

    fn spawn<F: std::future::Future<Output = Done> + Send + 'static>(&self, task: F) {
        let done = self.done.0.clone();
        tokio::spawn(async move {
            let _ = done.send(task.await).await;
        });
    }

    /// Starts a triple or presignature run, recorded (owner, first id) so that an epoch
    /// switch can stop it. Triple batches run on the generation runtime (heavy, at a lower
    /// priority); presignatures, a millisecond of work, on the main one, so that they never
    /// wait behind a batch.
    fn spawn_generation<F: std::future::Future<Output = Done> + Send + 'static>(
        &mut self,
        owner: ParticipantId,
        id: crate::storage::AssetId,
        run: (generations::Kind, u64, bool, Vec<ParticipantId>),
        task: F,
    ) {
        let done = self.done.0.clone();
        let (kind, epoch, mine, participants) = run;
        let task = async move {
            let _ = done.send(task.await).await;
        };
        let handle = match kind {
            generations::Kind::Triples(_) => self.setup.generation.spawn(task),
            generations::Kind::Presignature => tokio::spawn(task),
        };
        self.in_flight.generations.start(
            owner,
            id,
            generations::Generation {
                kind,
                epoch,
                mine,
                participants,
                abort: handle.abort_handle(),
            },
        );
    }

    /// What this node's heartbeats tell its peers: its height, the epoch it serves and the
    /// presignatures it could lead with now.
    fn refresh_mesh_status(&self) {
        let (presignatures, behind) = match (&self.session, &self.assets) {
            (Some(session), Some(assets)) => {
                let ready = self.ready(session);
                (
                    assets.usable_presignatures(&ready.participants),
                    ready.behind,
                )
            }
            _ => (0, false),
        };
        let epoch = self.session.as_ref().map(|s| s.epoch);
        let mut leading = self.leading.get();
        // A node catching up with the chain has not seen the requests it would lead.
        let can_lead = leading.update(epoch, presignatures, Instant::now()) && !behind;
        self.leading.set(leading);
        let Some(mesh) = &self.mesh else {
            return;
        };
        mesh.mesh.set_status(PeerStatus {
            height: self.height,
            serving_epoch: epoch,
            presignatures: u32::try_from(presignatures).unwrap_or(u32::MAX),
            can_lead,
        });
    }

    fn publish_status(&mut self) {
        let alive = self
            .mesh
            .as_ref()
            .map(|m| m.mesh.alive())
            .unwrap_or_default();
        self.refresh_mesh_status();
        let (triples, presignatures) = self.assets.as_ref().map_or((0, 0), OwnedAssets::counts);
        let metrics = &self.shared.metrics;
        metrics.peers_up.set(alive.len() as i64);
        metrics.triples_owned.set(triples as i64);
        metrics.presignatures_owned.set(presignatures as i64);
        let participant_id = self.session.as_ref().map(|s| s.me.0);
        let mut status = self.setup.status.write().unwrap_or_else(|p| p.into_inner());
        status.participant_id = participant_id;
        status.contract_state = self.state_json.clone();
        status.last_block = Some(self.height);
        status.peers_up = alive.iter().map(|p| p.0).collect();
        status.triples_owned = triples;
        status.presignatures_owned = presignatures;
        status.requests_pending = self.book.len();
        status.serving_epoch = self.session.as_ref().map(|s| s.epoch);
        status.problem = self.problem.clone();
    }
}
