//! The coordinator: one loop that maps what the chain says to what this node does. Each
//! block it re-reads the contract's `state()` and moves to the matching node state (join,
//! generate and vote the key, serve); between blocks it keeps the stockpile filled, leads the
//! sign requests that fall to it and joins the runs peers announce.
//!
//! The loop itself never waits on a protocol: runs are tasks ([`crate::tasks`]) that report
//! back through [`Done`]. Asset generation runs on its own runtime so that signing, the mesh
//! and the indexer never queue behind a triple batch.

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
use crate::contract_state::{self, ContractState, Member};
use crate::http::NodeStatus;
use crate::indexer::{ChainEvent, SeenRequest};
use crate::jobs::{Announcement, Job, JobError, Membership};
use crate::leader::request_id;
use crate::mesh::network::{Mesh, MeshSettings, PeerInfo};
use crate::mesh::{Endpoint, PeerDirectory};
use crate::requests::RequestBook;
use crate::stockpile::{Start, StockLevels, Stockpile};
use crate::tasks::{self, Done, Session, Shared, SignInputs, SignOutcome};

mod following;
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

/// A peer's announcement waiting for this node to be ready for it.
struct Waiting {
    from: ParticipantId,
    run: Announcement,
    until: Instant,
}

#[derive(Default)]
struct InFlight {
    triples: usize,
    presignatures: usize,
    /// Generations this node owns.
    owned: usize,
    /// Generations peers announced and this node joined.
    followed: usize,
    /// A key generation or reshare run.
    key_run: bool,
    transaction: bool,
}

pub struct Coordinator {
    shared: Arc<Shared>,
    setup: Setup,
    state: Option<ContractState>,
    state_json: serde_json::Value,
    height: u64,
    last_join: Option<u64>,
    mesh: Option<MeshHandle>,
    session: Option<Session>,
    assets: Option<OwnedAssets>,
    stockpile: Stockpile,
    book: RequestBook,
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
            assets: None,
            stockpile,
            book: RequestBook::default(),
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
            let alive = session.mesh.alive();
            self.lead_due_requests(&session, &alive);
        }
    }

    /// A `respond` on chain ends the request here if its signature verifies under the
    /// request's derived key (then the contract took it, or had already taken another): no
    /// peer's word is needed, and no extra view call.
    fn on_responded(&mut self, request: &SignatureRequest, response: &SignatureResponse) {
        let Some(session) = &self.session else {
            return;
        };
        let SignatureResponse::Secp256k1(signature) = response;
        let Payload::Ecdsa(payload) = &request.payload;
        let verifies = derive_public_key(&session.key.public_key, &request.tweak)
            .and_then(PublicKey::from_affine)
            .and_then(|key| signature.verify(&key, payload));
        if verifies.is_ok() {
            self.book.remove(&request_id(request));
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
            } => {
                let Some(me) = contract_state::find(candidates, &account) else {
                    return;
                };
                let me = me.participant();
                self.ensure_mesh(me, candidates).await;
                let voted = pk_votes.iter().any(|v| v.voters.contains(&account));
                self.generate_or_vote_key(me, candidates, *threshold, voted);
            }
            ContractState::Running {
                epoch,
                participants,
                threshold,
                public_key,
                candidates,
            } => match contract_state::find(participants, &account) {
                Some(me) => {
                    let me = me.participant();
                    self.ensure_mesh(me, participants).await;
                    self.ensure_session(*epoch, me, participants, *threshold, public_key);
                }
                None => {
                    self.stop_serving();
                    if !candidates.iter().any(|c| c.account_id == account) {
                        self.join();
                    }
                }
            },
            ContractState::Resharing {
                old_epoch,
                new_participants,
                finished_votes,
                ..
            } => {
                // Old shares stop serving; the new ones serve from the next Running state.
                self.stop_serving();
                let Some(me) = contract_state::find(new_participants, &account) else {
                    return;
                };
                let me = me.participant();
                self.ensure_mesh(me, new_participants).await;
                let voted = finished_votes.contains(&account);
                self.reshare_or_vote(me, *old_epoch, voted);
            }
        }
    }

    fn join(&mut self) {
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

    /// Connects to `members` (again, if they changed).
    async fn ensure_mesh(&mut self, me: ParticipantId, members: &[Member]) {
        let peers: Vec<PeerInfo> = members.iter().filter_map(Member::peer).collect();
        if self
            .mesh
            .as_ref()
            .is_some_and(|m| m.me == me && m.peers == peers)
        {
            return;
        }
        // The old mesh holds the listening socket: stop it first (runs still holding it fail
        // their sends and end).
        if let Some(old) = self.mesh.take() {
            old.mesh.stop();
        }
        self.session = None;
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

    fn ensure_session(
        &mut self,
        epoch: u64,
        me: ParticipantId,
        members: &[Member],
        threshold: usize,
        public_key: &str,
    ) {
        if self.session.as_ref().is_some_and(|s| s.epoch == epoch) {
            return;
        }
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return;
        };
        let key = match self.shared.store.key_share(epoch) {
            Ok(Some(key)) => key,
            Ok(None) => {
                tracing::error!(
                    epoch,
                    "a participant without its key share for this epoch: cannot serve"
                );
                return;
            }
            Err(error) => {
                tracing::error!(%error, "cannot read the key share");
                return;
            }
        };
        let matches = PublicKey::parse(public_key)
            .is_ok_and(|contract_key| contract_key.as_affine() == &key.public_key);
        if !matches {
            tracing::error!(
                epoch,
                "the stored key share is not for the contract's public key"
            );
            return;
        }
        let assets = match OwnedAssets::load(&self.shared.store, me) {
            Ok(assets) => assets,
            Err(error) => {
                tracing::error!(%error, "cannot read the stockpile");
                return;
            }
        };
        tracing::info!(epoch, me = %me, "serving");
        self.assets = Some(assets);
        self.session = Some(Session {
            epoch,
            me,
            participants: contract_state::ids(members),
            threshold,
            key: Arc::new(key),
            mesh,
        });
    }

    fn stop_serving(&mut self) {
        if self.session.take().is_some() {
            tracing::info!("no longer serving in this epoch");
        }
    }

    // ----- finished runs -----

    fn on_done(&mut self, done: Done) {
        match done {
            Done::KeyRun(result) => {
                self.in_flight.key_run = false;
                match result {
                    Ok(()) => tracing::info!("key share stored; voting on the next block"),
                    Err(error) => {
                        tracing::warn!(%error, "key generation or reshare failed; retrying")
                    }
                }
            }
            Done::Transaction => self.in_flight.transaction = false,
            Done::Triples {
                epoch,
                mine: true,
                first_id,
                count,
                set,
                ok,
            } => {
                self.in_flight.triples = self.in_flight.triples.saturating_sub(count as usize);
                self.in_flight.owned = self.in_flight.owned.saturating_sub(1);
                if let (true, Some(assets)) = (ok && self.is_current(epoch), self.assets.as_mut()) {
                    assets.add_triples(first_id, count, &set);
                }
            }
            Done::Presignature {
                epoch,
                mine: true,
                id,
                set,
                ok,
            } => {
                self.in_flight.presignatures = self.in_flight.presignatures.saturating_sub(1);
                self.in_flight.owned = self.in_flight.owned.saturating_sub(1);
                if let (true, Some(assets)) = (ok && self.is_current(epoch), self.assets.as_mut()) {
                    assets.add_presignature(id, &set);
                }
            }
            Done::Triples { mine: false, .. } | Done::Presignature { mine: false, .. } => {
                self.in_flight.followed = self.in_flight.followed.saturating_sub(1);
            }
            Done::Signed { request, outcome } => self.on_signed(request, outcome),
            Done::Followed => {}
        }
        self.publish_status();
    }

    // ----- plumbing -----

    /// Whether a run of `epoch` still counts: assets of an epoch that has been reshared away
    /// were dropped with it.
    fn is_current(&self, epoch: u64) -> bool {
        self.session.as_ref().is_some_and(|s| s.epoch == epoch)
    }

    fn spawn<F: std::future::Future<Output = Done> + Send + 'static>(&self, task: F) {
        let done = self.done.0.clone();
        tokio::spawn(async move {
            let _ = done.send(task.await).await;
        });
    }

    fn spawn_generation<F: std::future::Future<Output = Done> + Send + 'static>(&self, task: F) {
        let done = self.done.0.clone();
        self.setup.generation.spawn(async move {
            let _ = done.send(task.await).await;
        });
    }

    fn publish_status(&self) {
        let alive = self
            .mesh
            .as_ref()
            .map(|m| m.mesh.alive())
            .unwrap_or_default();
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
    }
}
