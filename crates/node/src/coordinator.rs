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
use chainsig_primitives::PublicKey;
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

const TICK: Duration = Duration::from_millis(50);
/// How long an announcement may wait for what it needs (the request seen by this node's own
/// indexer, or the triples/presignature stored by a run that is just finishing).
const ANNOUNCEMENT_PATIENCE: Duration = Duration::from_secs(15);
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
    keygen: bool,
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
                    if contract_state::find(candidates, &account).is_none() {
                        self.join();
                    }
                }
            },
            ContractState::Resharing { .. } => {
                // Resharing is not taken part in yet: serve nothing until Running again.
                self.stop_serving();
            }
        }
    }

    fn generate_or_vote_key(
        &mut self,
        me: ParticipantId,
        candidates: &[Member],
        threshold: usize,
        voted: bool,
    ) {
        if self.in_flight.keygen || self.in_flight.transaction {
            return;
        }
        let share = match self.shared.store.key_share(0) {
            Ok(share) => share,
            Err(error) => {
                tracing::error!(%error, "cannot read the key share");
                return;
            }
        };
        match share {
            Some(_) if voted => {}
            Some(share) => {
                let Ok(public_key) = PublicKey::from_affine(share.public_key) else {
                    tracing::error!("the stored key share has no valid public key");
                    return;
                };
                tracing::info!(public_key = %public_key.to_near_string(), "voting the root key");
                self.in_flight.transaction = true;
                let args = json!({ "public_key": public_key.to_near_string() });
                self.spawn(tasks::transact(self.shared.clone(), "vote_pk", args));
            }
            None => self.lead_keygen(me, candidates, threshold),
        }
    }

    /// The candidate with the lowest id starts key generation once every candidate is up;
    /// the others join when it announces.
    fn lead_keygen(&mut self, me: ParticipantId, candidates: &[Member], threshold: usize) {
        let ids = contract_state::ids(candidates);
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return;
        };
        let all_up = ids.iter().all(|p| mesh.alive().contains(p));
        if ids.first() != Some(&me) || !all_up {
            return;
        }
        let run = Announcement::new(Job::Keygen {
            participants: ids.clone(),
            threshold,
            attempt: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
        });
        tracing::info!(participants = ?ids, threshold, "starting key generation");
        tasks::announce(&mesh, me, &ids, &run.body);
        self.start_keygen(mesh, me, run);
    }

    fn start_keygen(&mut self, mesh: Arc<Mesh>, me: ParticipantId, run: Announcement) {
        let Job::Keygen {
            participants,
            threshold,
            ..
        } = &run.job
        else {
            return;
        };
        self.in_flight.keygen = true;
        let task = tasks::keygen(
            self.shared.clone(),
            mesh,
            me,
            participants.clone(),
            *threshold,
            run.instance(),
        );
        self.spawn(task);
    }

    /// Joins the key generation the lowest-id candidate announced, if it matches the
    /// contract's candidates and this node has no key yet.
    fn follow_keygen(&mut self, waiting: Waiting) -> Option<Waiting> {
        let Some(ContractState::Initializing {
            candidates,
            threshold,
            ..
        }) = &self.state
        else {
            return Some(waiting); // this node has not seen the state the leader acts on
        };
        let ids = contract_state::ids(candidates);
        let Job::Keygen {
            participants,
            threshold: announced,
            ..
        } = &waiting.run.job
        else {
            return None;
        };
        let me = contract_state::find(candidates, &self.shared.account).map(Member::participant);
        let valid = ids.first() == Some(&waiting.from)
            && *participants == ids
            && announced == threshold
            && me.is_some();
        if !valid {
            tracing::warn!(peer = %waiting.from, "refused a key generation announcement that does not match the contract");
            return None;
        }
        if self.in_flight.keygen {
            return Some(waiting); // the previous try is still winding down
        }
        if !matches!(self.shared.store.key_share(0), Ok(None)) {
            return None; // already holds a share (or cannot read storage): nothing to join
        }
        let (Some(mesh), Some(me)) = (self.mesh.as_ref().map(|m| m.mesh.clone()), me) else {
            return Some(waiting);
        };
        self.start_keygen(mesh, me, waiting.run);
        None
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
        if self.mesh.as_ref().is_some_and(|m| m.peers == peers) {
            return;
        }
        // The old mesh holds the listening socket: let it go first.
        self.mesh = None;
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

    // ----- between blocks -----

    fn on_tick(&mut self) {
        self.retry_waiting();
        let Some(session) = self.session.clone() else {
            return;
        };
        let alive = session.mesh.alive();
        self.fill_stockpile(&session, &alive);
        self.lead_due_requests(&session, &alive);
    }

    fn fill_stockpile(&mut self, session: &Session, alive: &[ParticipantId]) {
        let Some(assets) = self.assets.as_mut() else {
            return;
        };
        let levels = StockLevels {
            triples: assets.usable_triples(alive),
            triples_in_flight: self.in_flight.triples,
            presignatures: assets.usable_presignatures(alive),
            presignatures_in_flight: self.in_flight.presignatures,
            generations_running: self.in_flight.owned,
        };
        for start in self.stockpile.plan(levels) {
            let started = match start {
                Start::Triples(count) => self.start_triples(session, alive, count),
                Start::Presignature => self.start_presignature(session, alive),
            };
            if !started {
                break;
            }
        }
    }

    fn start_triples(&mut self, session: &Session, alive: &[ParticipantId], count: usize) -> bool {
        let Some(assets) = self.assets.as_mut() else {
            return false;
        };
        let Some(set) = assets.partner_set(alive, session.threshold) else {
            return false;
        };
        let first_id = match assets.allocate(&self.shared.store, count as u64) {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(%error, "cannot allocate asset ids");
                return false;
            }
        };
        let run = Announcement::new(Job::Triples {
            epoch: session.epoch,
            owner: session.me,
            first_id,
            count: count as u32,
            participants: set,
        });
        self.in_flight.triples += count;
        self.in_flight.owned += 1;
        let task = tasks::triples(self.shared.clone(), session.clone(), run, true);
        self.spawn_generation(task);
        true
    }

    fn start_presignature(&mut self, session: &Session, alive: &[ParticipantId]) -> bool {
        let Some(assets) = self.assets.as_mut() else {
            return false;
        };
        let Some((triples, set)) = assets.pick_triples(alive) else {
            return false;
        };
        let id = match assets.allocate(&self.shared.store, 1) {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(%error, "cannot allocate asset ids");
                return false;
            }
        };
        let run = Announcement::new(Job::Presignature {
            epoch: session.epoch,
            owner: session.me,
            id,
            triples,
            participants: set,
        });
        self.in_flight.presignatures += 1;
        self.in_flight.owned += 1;
        let task = tasks::presignature(self.shared.clone(), session.clone(), run, true);
        self.spawn_generation(task);
        true
    }

    fn lead_due_requests(&mut self, session: &Session, alive: &[ParticipantId]) {
        let takeover = Duration::from_millis(self.shared.timeouts.sign_ms);
        let now = Instant::now();
        let due = self
            .book
            .due(session.me, &session.participants, alive, takeover, now);
        for id in due {
            let Some((presignature, set)) = self
                .assets
                .as_mut()
                .and_then(|assets| assets.pick_presignature(alive))
            else {
                return; // nothing usable in stock: the stockpile is refilling
            };
            let Some(pending) = self.book.get_mut(&id) else {
                continue;
            };
            pending.signing = true;
            pending.attempts += 1;
            // A backup leader (or a retry) first makes sure the request still waits.
            let backup = pending.attempts > 1 || now.duration_since(pending.since) >= takeover;
            let inputs = SignInputs {
                request: pending.seen.request,
                request_id: id,
                height: pending.seen.height,
                entropy: pending.seen.entropy,
                seen_at: pending.since,
            };
            let task = tasks::lead_signature(
                self.shared.clone(),
                session.clone(),
                inputs,
                presignature,
                set,
                backup,
            );
            self.spawn(task);
        }
    }

    // ----- peers' announcements -----

    fn on_announcement(&mut self, from: ParticipantId, body: Vec<u8>) {
        let run = match Announcement::received(body) {
            Ok(run) => run,
            Err(error) => {
                tracing::warn!(peer = %from, %error, "refused an announcement");
                return;
            }
        };
        if let Job::Answered { request } = run.job {
            self.book.remove(&request);
            return;
        }
        let until = Instant::now() + ANNOUNCEMENT_PATIENCE;
        if let Some(waiting) = self.try_follow(Waiting { from, run, until }) {
            self.waiting.push(waiting);
        }
    }

    fn retry_waiting(&mut self) {
        let now = Instant::now();
        for waiting in std::mem::take(&mut self.waiting) {
            if waiting.until < now {
                tracing::warn!(peer = %waiting.from, job = ?waiting.run.job, "gave up on an announcement this node was not ready for");
                continue;
            }
            if let Some(waiting) = self.try_follow(waiting) {
                self.waiting.push(waiting);
            }
        }
    }

    /// Joins the announced run, or hands the announcement back when this node is not ready
    /// for it yet. Refused announcements are logged and dropped.
    fn try_follow(&mut self, waiting: Waiting) -> Option<Waiting> {
        if matches!(waiting.run.job, Job::Keygen { .. }) {
            return self.follow_keygen(waiting);
        }
        let Some(session) = self.session.clone() else {
            return Some(waiting);
        };
        let members = Membership {
            epoch: session.epoch,
            me: session.me,
            participants: &session.participants,
            threshold: session.threshold,
        };
        match waiting.run.job.check(waiting.from, &members) {
            Ok(()) => {}
            Err(JobError::Epoch(epoch)) if epoch > session.epoch => return Some(waiting),
            Err(error) => {
                tracing::warn!(peer = %waiting.from, %error, "refused an announcement");
                return None;
            }
        }
        match &waiting.run.job {
            Job::Triples { .. } | Job::Presignature { .. } => {
                self.follow_generation(session, waiting)
            }
            Job::Sign { .. } => self.follow_signature(session, waiting),
            Job::Answered { .. } | Job::Keygen { .. } => None,
        }
    }

    fn follow_generation(&mut self, session: Session, waiting: Waiting) -> Option<Waiting> {
        let limit =
            self.setup.config.stockpile.max_concurrent_generations * session.participants.len();
        if self.in_flight.followed >= limit {
            return Some(waiting);
        }
        if let Job::Presignature { owner, triples, .. } = &waiting.run.job {
            // The owner may finish the triples' run a moment before this node does.
            let stored = self.shared.store.triple_ids(*owner, usize::MAX);
            let have = stored.is_ok_and(|ids| triples.iter().all(|t| ids.contains(t)));
            if !have {
                return Some(waiting);
            }
        }
        self.in_flight.followed += 1;
        let shared = self.shared.clone();
        let task: std::pin::Pin<Box<dyn std::future::Future<Output = Done> + Send>> = match waiting
            .run
            .job
        {
            Job::Triples { .. } => Box::pin(tasks::triples(shared, session, waiting.run, false)),
            _ => Box::pin(tasks::presignature(shared, session, waiting.run, false)),
        };
        self.spawn_generation(task);
        None
    }

    fn follow_signature(&mut self, session: Session, waiting: Waiting) -> Option<Waiting> {
        let Job::Sign {
            leader,
            presignature,
            request,
            height,
            entropy,
            participants,
            ..
        } = &waiting.run.job
        else {
            return None;
        };
        let id = request_id(request);
        // Sign only what this node's own indexer saw on chain, in the same block.
        let Some(pending) = self.book.get(&id) else {
            return Some(waiting);
        };
        if pending.seen.height != *height || pending.seen.entropy != *entropy {
            tracing::warn!(peer = %waiting.from, "refused a signature for a request seen in another block");
            return None;
        }
        let stored = self.shared.store.presignature_ids(*leader, usize::MAX);
        if !stored.is_ok_and(|ids| ids.contains(presignature)) {
            return Some(waiting);
        }
        let inputs = SignInputs {
            request: *request,
            request_id: id,
            height: *height,
            entropy: *entropy,
            seen_at: pending.since,
        };
        let task = tasks::follow_signature(
            self.shared.clone(),
            session,
            inputs,
            *leader,
            *presignature,
            participants.clone(),
            waiting.run.instance(),
        );
        self.spawn(task);
        None
    }

    // ----- finished runs -----

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Keygen(result) => {
                self.in_flight.keygen = false;
                match result {
                    Ok(()) => tracing::info!("key generation done; voting on the next block"),
                    Err(error) => tracing::warn!(%error, "key generation failed; retrying"),
                }
            }
            Done::Transaction => self.in_flight.transaction = false,
            Done::Triples {
                mine: true,
                first_id,
                count,
                set,
                ok,
            } => {
                self.in_flight.triples = self.in_flight.triples.saturating_sub(count as usize);
                self.in_flight.owned = self.in_flight.owned.saturating_sub(1);
                if let (true, Some(assets)) = (ok, self.assets.as_mut()) {
                    assets.add_triples(first_id, count, &set);
                }
            }
            Done::Presignature {
                mine: true,
                id,
                set,
                ok,
            } => {
                self.in_flight.presignatures = self.in_flight.presignatures.saturating_sub(1);
                self.in_flight.owned = self.in_flight.owned.saturating_sub(1);
                if let (true, Some(assets)) = (ok, self.assets.as_mut()) {
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

    fn on_signed(&mut self, request: crate::leader::RequestId, outcome: SignOutcome) {
        match outcome {
            SignOutcome::Responded { latency } => {
                let metrics = &self.shared.metrics;
                metrics.signatures_made.inc();
                metrics.sign_latency_ms.observe(latency.as_secs_f64() * 1e3);
                if let Some(done) = self.book.remove(&request) {
                    let blocks = self.height.saturating_sub(done.seen.height);
                    metrics.sign_latency_blocks.observe(blocks as f64);
                }
            }
            SignOutcome::NotPending => {
                self.book.remove(&request);
            }
            SignOutcome::Unused { presignature, set } => {
                if let Some(assets) = self.assets.as_mut() {
                    assets.add_presignature(presignature, &set);
                }
                self.retry_later(request, Duration::from_secs(1));
            }
            SignOutcome::Failed(error) => {
                tracing::warn!(%error, "signature run failed; will retry");
                self.retry_later(request, Duration::from_millis(500));
            }
        }
    }

    fn retry_later(&mut self, request: crate::leader::RequestId, after: Duration) {
        if let Some(pending) = self.book.get_mut(&request) {
            pending.signing = false;
            pending.retry_at = Instant::now() + after;
        }
    }

    // ----- plumbing -----

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
