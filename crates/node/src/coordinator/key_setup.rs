//! Getting a key share: key generation among the initial candidates, and resharing the same
//! key to a new participant set. Both run in the contract's attempts: each attempt has one
//! leader, which announces one run once everyone it needs is up; the others join that run
//! only if it matches the contract's state. A share is voted for with the attempt that made
//! it, and the contract finishes the event once every member has voted in one attempt.
//!
//! One run per attempt, on every node, even across restarts (a checkpoint records the
//! attempt a node took part in before it sends anything): two runs of one attempt could
//! leave members holding shares from different runs, all voted for, that do not fit together.

use super::*;

/// The key generation or reshare run under way.
pub(super) struct KeyRun {
    /// The epoch whose key share it makes (0 for key generation).
    epoch: u64,
    attempt: u64,
    abort: tokio::task::AbortHandle,
}

/// The checkpoint that records the last attempt of `epoch`'s key event this node ran in
/// (stored as attempt + 1; absent: none).
fn attempt_checkpoint(epoch: u64) -> String {
    format!("key_event_attempt/{epoch}")
}

/// What a reshare attempt asks of the new set, from the contract's Resharing state.
pub(super) struct ResharePlan {
    old_epoch: u64,
    new_epoch: u64,
    old: Vec<ParticipantId>,
    new: Vec<ParticipantId>,
    threshold: usize,
    public_key: PublicKey,
    attempt: Attempt,
}

impl Coordinator {
    // ----- the run itself -----

    /// Whether this node may still take part in `attempt` of `epoch`'s key event (it has not
    /// run in it, or a later one); records that it does.
    fn claim_attempt(&self, epoch: u64, attempt: u64) -> bool {
        let name = attempt_checkpoint(epoch);
        match self.shared.store.checkpoint(&name) {
            Ok(Some(done)) if done > attempt => return false,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "cannot read the key event checkpoint");
                return false;
            }
        }
        match self.shared.store.set_checkpoint(&name, attempt + 1) {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, "cannot record the key event attempt");
                false
            }
        }
    }

    fn start_key_run<F>(&mut self, epoch: u64, attempt: u64, task: F)
    where
        F: std::future::Future<Output = Done> + Send + 'static,
    {
        let done = self.done.0.clone();
        let handle = tokio::spawn(async move {
            let _ = done.send(task.await).await;
        });
        self.key_run = Some(KeyRun {
            epoch,
            attempt,
            abort: handle.abort_handle(),
        });
    }

    /// Stops the key run under way, if any (its attempt or event is over).
    pub(super) fn end_key_run(&mut self, why: &str) {
        if let Some(run) = self.key_run.take() {
            run.abort.abort();
            tracing::info!(
                epoch = run.epoch,
                attempt = run.attempt,
                why,
                "key run stopped"
            );
        }
    }

    /// Whether a key run for this attempt is under way; one for another attempt is stopped.
    fn key_run_for(&mut self, epoch: u64, attempt: u64) -> bool {
        match &self.key_run {
            Some(run) if run.epoch == epoch && run.attempt == attempt => true,
            Some(_) => {
                self.end_key_run("its attempt is over");
                false
            }
            None => false,
        }
    }

    pub(super) fn on_key_run_done(&mut self, epoch: u64, attempt: u64, result: Result<(), String>) {
        if self
            .key_run
            .as_ref()
            .is_some_and(|r| r.epoch == epoch && r.attempt == attempt)
        {
            self.key_run = None;
        }
        match result {
            Ok(()) => tracing::info!(epoch, attempt, "key share stored; voting on the next block"),
            Err(error) => tracing::warn!(
                epoch,
                attempt,
                %error,
                "key generation or reshare failed; the next attempt retries"
            ),
        }
    }

    // ----- key generation -----

    pub(super) fn keygen_step(
        &mut self,
        me: ParticipantId,
        candidates: &[Member],
        threshold: usize,
        attempt: Attempt,
        voted: bool,
    ) {
        if self.key_run_for(0, attempt.id) || self.in_flight.transaction {
            return;
        }
        match self.shared.store.key_share_attempt(0) {
            Err(error) => tracing::error!(%error, "cannot read the key share"),
            Ok(Some(made)) if made == attempt.id => {
                if !voted {
                    self.vote_root_key(attempt.id);
                }
            }
            Ok(_) if attempt.leader() == me => self.lead_keygen(me, candidates, threshold, attempt),
            Ok(_) => {}
        }
    }

    fn vote_root_key(&mut self, attempt: u64) {
        let public_key = match self.shared.store.key_share(0) {
            Ok(Some(share)) => PublicKey::from_affine(share.public_key),
            _ => return,
        };
        let Ok(public_key) = public_key else {
            tracing::error!("the stored key share has no valid public key");
            return;
        };
        tracing::info!(public_key = %public_key.to_near_string(), attempt, "voting the root key");
        self.in_flight.transaction = true;
        let args = json!({ "public_key": public_key.to_near_string(), "attempt": attempt });
        self.spawn(tasks::transact(self.shared.clone(), "vote_pk", args));
    }

    /// This attempt's leader starts key generation once every candidate is up.
    fn lead_keygen(
        &mut self,
        me: ParticipantId,
        candidates: &[Member],
        threshold: usize,
        attempt: Attempt,
    ) {
        let ids = contract_state::ids(candidates);
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return;
        };
        let alive = mesh.alive();
        if !ids.iter().all(|p| alive.contains(p)) || !self.claim_attempt(0, attempt.id) {
            return;
        }
        let run = Announcement::new(Job::Keygen {
            participants: ids.clone(),
            threshold,
            attempt: attempt.id,
            nonce: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
        });
        tracing::info!(participants = ?ids, threshold, attempt = attempt.id, "starting key generation");
        tasks::announce(&mesh, me, &ids, &run.body);
        self.start_keygen(mesh, me, run);
    }

    fn start_keygen(&mut self, mesh: Arc<Mesh>, me: ParticipantId, run: Announcement) {
        let Job::Keygen {
            participants,
            threshold,
            attempt,
            ..
        } = &run.job
        else {
            return;
        };
        let task = tasks::keygen(
            self.shared.clone(),
            mesh,
            tasks::KeygenRun {
                me,
                participants: participants.clone(),
                threshold: *threshold,
                attempt: *attempt,
                instance: run.instance(),
            },
        );
        self.start_key_run(0, *attempt, task);
    }

    /// Joins the key generation this attempt's leader announced, if it matches the contract.
    pub(super) fn follow_keygen(&mut self, waiting: Waiting) -> Option<Waiting> {
        let Some(ContractState::Initializing {
            candidates,
            threshold,
            key_event,
            ..
        }) = &self.state
        else {
            return waiting.because("the contract state the leader acts on");
        };
        let Job::Keygen {
            participants,
            threshold: announced,
            attempt,
            ..
        } = &waiting.run.job
        else {
            return None;
        };
        let current = key_event.attempt;
        if *attempt > current.id {
            return waiting.because("the attempt the leader is in");
        }
        let me = contract_state::find(candidates, &self.shared.account).map(Member::participant);
        let valid = *attempt == current.id
            && waiting.from == current.leader()
            && *participants == contract_state::ids(candidates)
            && announced == threshold;
        let (true, Some(me)) = (valid, me) else {
            tracing::warn!(peer = %waiting.from, "refused a key generation announcement that does not match the contract");
            return None;
        };
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return waiting.because("this node's mesh");
        };
        if self.key_run_for(0, current.id) || !self.claim_attempt(0, current.id) {
            return None;
        }
        self.start_keygen(mesh, me, waiting.run);
        None
    }

    // ----- reshares -----

    pub(super) fn reshare_step(
        &mut self,
        me: ParticipantId,
        new_epoch: u64,
        key_event: &contract_state::KeyEvent,
        voted: bool,
    ) {
        let attempt = key_event.attempt;
        if self.key_run_for(new_epoch, attempt.id) || self.in_flight.transaction {
            return;
        }
        match self.shared.store.key_share_attempt(new_epoch) {
            Err(error) => tracing::error!(%error, "cannot read the key share"),
            Ok(Some(made)) if made == attempt.id => {
                let ready =
                    self.stocked_for_new_epoch() || key_event.attempt_half_over(self.height);
                if !voted && ready {
                    tracing::info!(
                        epoch = new_epoch,
                        attempt = made,
                        "reporting the reshare done"
                    );
                    self.in_flight.transaction = true;
                    let args = json!({ "epoch": new_epoch, "attempt": made });
                    self.spawn(tasks::transact(self.shared.clone(), "vote_reshared", args));
                }
            }
            Ok(_) if attempt.leader() == me => self.lead_reshare(me),
            Ok(_) => {}
        }
    }

    /// Whether this node holds its full stock of the new epoch's presignatures (its high
    /// watermark) to report its share. The last report switches the network to the new
    /// epoch, whose presignatures this node makes ahead of the switch (see
    /// `ensure_upcoming`); the old epoch serves meanwhile, so waiting costs no signature, while
    /// a switch on a thin stock leaves requests waiting for triples (tens of milliseconds
    /// each, against one for a presignature). The caller bounds the wait by half the attempt.
    /// A node that does not serve the old epoch (a newcomer) has nothing to make them from.
    fn stocked_for_new_epoch(&self) -> bool {
        let old_epoch = match &self.state {
            Some(ContractState::Resharing { old_epoch, .. }) => *old_epoch,
            _ => return true,
        };
        let serving_old = self.session.as_ref().is_some_and(|s| s.epoch == old_epoch);
        let (true, Some(upcoming), Some(assets)) = (serving_old, &self.upcoming, &self.assets)
        else {
            return !serving_old;
        };
        let alive = upcoming.alive_participants();
        assets.usable_upcoming(&alive) >= self.setup.config.stockpile.presignatures_high
    }

    /// The reshare the contract's Resharing state asks for.
    fn reshare_plan(&self) -> Option<ResharePlan> {
        let Some(ContractState::Resharing {
            old_epoch,
            new_epoch,
            old_participants,
            new_participants,
            threshold,
            public_key,
            key_event,
            ..
        }) = &self.state
        else {
            return None;
        };
        Some(ResharePlan {
            old_epoch: *old_epoch,
            new_epoch: *new_epoch,
            old: contract_state::ids(old_participants),
            new: contract_state::ids(new_participants),
            threshold: *threshold,
            public_key: PublicKey::parse(public_key).ok()?,
            attempt: key_event.attempt,
        })
    }

    /// The old participants whose shares can rebuild the key now: in both sets, up, and
    /// serving the old epoch (a member that lost its share does not say it serves, and joins
    /// as a newcomer instead).
    fn contributors(&self, mesh: &Mesh, plan: &ResharePlan) -> Vec<ParticipantId> {
        plan.old
            .iter()
            .copied()
            .filter(|p| plan.new.binary_search(p).is_ok())
            .filter(|&p| {
                mesh.status(p)
                    .is_some_and(|s| s.serving_epoch == Some(plan.old_epoch))
            })
            .collect()
    }

    fn lead_reshare(&mut self, me: ParticipantId) {
        let Some(plan) = self.reshare_plan() else {
            return;
        };
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return;
        };
        let alive = mesh.alive();
        let contributors = self.contributors(&mesh, &plan);
        if !plan.new.iter().all(|p| alive.contains(p)) || contributors.len() < plan.threshold {
            return;
        }
        if !self.claim_attempt(plan.new_epoch, plan.attempt.id) {
            return;
        }
        let run = Announcement::new(Job::Reshare {
            old_epoch: plan.old_epoch,
            new_epoch: plan.new_epoch,
            attempt: plan.attempt.id,
            contributors: contributors.clone(),
            participants: plan.new.clone(),
            threshold: plan.threshold,
            nonce: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
        });
        tracing::info!(old = ?plan.old, new = ?plan.new, ?contributors, attempt = plan.attempt.id, "starting the reshare");
        tasks::announce(&mesh, me, &plan.new, &run.body);
        self.start_reshare(mesh, me, plan, contributors, run);
    }

    fn start_reshare(
        &mut self,
        mesh: Arc<Mesh>,
        me: ParticipantId,
        plan: ResharePlan,
        contributors: Vec<ParticipantId>,
        run: Announcement,
    ) {
        let old_share = if contributors.contains(&me) {
            match self.shared.store.key_share(plan.old_epoch) {
                Ok(Some(share)) => Some(share),
                Ok(None) => {
                    tracing::error!(
                        epoch = plan.old_epoch,
                        "named as a contributor without an old share: cannot reshare"
                    );
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the key share");
                    return;
                }
            }
        } else {
            None
        };
        let task = tasks::reshare(
            self.shared.clone(),
            mesh,
            tasks::ReshareRun {
                me,
                contributors,
                participants: plan.new,
                threshold: plan.threshold,
                old_share,
                public_key: *plan.public_key.as_affine(),
                new_epoch: plan.new_epoch,
                attempt: plan.attempt.id,
                instance: run.instance(),
            },
        );
        self.start_key_run(plan.new_epoch, plan.attempt.id, task);
    }

    /// Joins the reshare this attempt's leader announced, if it matches the contract's
    /// Resharing state.
    pub(super) fn follow_reshare(&mut self, waiting: Waiting) -> Option<Waiting> {
        let Some(plan) = self.reshare_plan() else {
            return waiting.because("the contract state the leader acts on");
        };
        let Job::Reshare {
            old_epoch,
            new_epoch,
            attempt,
            contributors,
            participants,
            threshold,
            ..
        } = &waiting.run.job
        else {
            return None;
        };
        if *new_epoch == plan.new_epoch && *attempt > plan.attempt.id {
            return waiting.because("the attempt the leader is in");
        }
        let me = self.mesh.as_ref().map(|m| m.me);
        let fits = |p: &ParticipantId| {
            plan.old.binary_search(p).is_ok() && plan.new.binary_search(p).is_ok()
        };
        let valid = waiting.from == plan.attempt.leader()
            && *attempt == plan.attempt.id
            && *old_epoch == plan.old_epoch
            && *new_epoch == plan.new_epoch
            && *participants == plan.new
            && *threshold == plan.threshold
            && contributors.windows(2).all(|w| w[0] < w[1])
            && contributors.iter().all(fits)
            && contributors.len() >= plan.threshold
            && me.is_some_and(|me| plan.new.binary_search(&me).is_ok());
        let (true, Some(me)) = (valid, me) else {
            tracing::warn!(peer = %waiting.from, "refused a reshare announcement that does not match the contract");
            return None;
        };
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return waiting.because("this node's mesh");
        };
        let (epoch, attempt) = (plan.new_epoch, plan.attempt.id);
        if self.key_run_for(epoch, attempt) || !self.claim_attempt(epoch, attempt) {
            return None;
        }
        let contributors = contributors.clone();
        self.start_reshare(mesh, me, plan, contributors, waiting.run);
        None
    }
}
