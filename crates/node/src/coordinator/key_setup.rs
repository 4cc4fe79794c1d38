//! Getting a key share: key generation among the initial candidates and voting the key;
//! resharing the same key to a new participant set and reporting it done. Each run is
//! announced by one node (the lowest id that can lead it) once everyone it needs is up, with a
//! fresh attempt id, and joined by the others only when it matches the contract's state.

use super::*;

impl Coordinator {
    pub(super) fn generate_or_vote_key(
        &mut self,
        me: ParticipantId,
        candidates: &[Member],
        threshold: usize,
        voted: bool,
    ) {
        if self.in_flight.key_run || self.in_flight.transaction {
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
    pub(super) fn lead_keygen(
        &mut self,
        me: ParticipantId,
        candidates: &[Member],
        threshold: usize,
    ) {
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

    pub(super) fn start_keygen(&mut self, mesh: Arc<Mesh>, me: ParticipantId, run: Announcement) {
        let Job::Keygen {
            participants,
            threshold,
            ..
        } = &run.job
        else {
            return;
        };
        self.in_flight.key_run = true;
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
    pub(super) fn follow_keygen(&mut self, waiting: Waiting) -> Option<Waiting> {
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
        if self.in_flight.key_run {
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

    pub(super) fn reshare_or_vote(&mut self, me: ParticipantId, old_epoch: u64, voted: bool) {
        if self.in_flight.key_run || self.in_flight.transaction {
            return;
        }
        let new_epoch = old_epoch + 1;
        match self.shared.store.key_share(new_epoch) {
            Err(error) => tracing::error!(%error, "cannot read the key share"),
            Ok(Some(_)) if voted => {}
            Ok(Some(_)) => {
                tracing::info!(epoch = new_epoch, "reporting the reshare done");
                self.in_flight.transaction = true;
                let args = json!({ "epoch": new_epoch });
                self.spawn(tasks::transact(self.shared.clone(), "vote_reshared", args));
            }
            Ok(None) => self.lead_reshare(me),
        }
    }

    /// The reshare the contract's Resharing state asks for, as (old epoch, old ids, new ids,
    /// threshold, root key).
    fn reshare_plan(&self) -> Option<ResharePlan> {
        let Some(ContractState::Resharing {
            old_epoch,
            old_participants,
            new_participants,
            threshold,
            public_key,
            ..
        }) = &self.state
        else {
            return None;
        };
        let old = contract_state::ids(old_participants);
        let new = contract_state::ids(new_participants);
        // The leader must hold an old share: it is the one that can always take part.
        let leader = new.iter().copied().find(|p| old.contains(p))?;
        Some(ResharePlan {
            old_epoch: *old_epoch,
            old,
            new,
            threshold: *threshold,
            public_key: PublicKey::parse(public_key).ok()?,
            leader,
        })
    }

    fn lead_reshare(&mut self, me: ParticipantId) {
        let Some(plan) = self.reshare_plan() else {
            return;
        };
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return;
        };
        let alive = mesh.alive();
        if plan.leader != me || !plan.new.iter().all(|p| alive.contains(p)) {
            return;
        }
        let run = Announcement::new(Job::Reshare {
            old_epoch: plan.old_epoch,
            old_participants: plan.old.clone(),
            participants: plan.new.clone(),
            threshold: plan.threshold,
            attempt: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
        });
        tracing::info!(old = ?plan.old, new = ?plan.new, "starting the reshare");
        tasks::announce(&mesh, me, &plan.new, &run.body);
        self.start_reshare(mesh, me, plan, run);
    }

    fn start_reshare(
        &mut self,
        mesh: Arc<Mesh>,
        me: ParticipantId,
        plan: ResharePlan,
        run: Announcement,
    ) {
        let old_share = if plan.old.contains(&me) {
            match self.shared.store.key_share(plan.old_epoch) {
                Ok(Some(share)) => Some(share),
                Ok(None) => {
                    tracing::error!(
                        epoch = plan.old_epoch,
                        "an old participant without its share cannot reshare"
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
        self.in_flight.key_run = true;
        let task = tasks::reshare(
            self.shared.clone(),
            mesh,
            tasks::ReshareRun {
                me,
                old_participants: plan.old,
                participants: plan.new,
                threshold: plan.threshold,
                old_share,
                public_key: *plan.public_key.as_affine(),
                new_epoch: plan.old_epoch + 1,
                instance: run.instance(),
            },
        );
        self.spawn(task);
    }

    /// Joins the reshare its leader announced, if it matches the contract's Resharing state
    /// and this node has no share of the new epoch yet.
    pub(super) fn follow_reshare(&mut self, waiting: Waiting) -> Option<Waiting> {
        let Some(plan) = self.reshare_plan() else {
            return Some(waiting); // this node has not seen the state the leader acts on
        };
        let Job::Reshare {
            old_epoch,
            old_participants,
            participants,
            threshold,
            ..
        } = &waiting.run.job
        else {
            return None;
        };
        let me = self.mesh.as_ref().map(|m| m.me);
        let valid = waiting.from == plan.leader
            && *old_epoch == plan.old_epoch
            && *old_participants == plan.old
            && *participants == plan.new
            && *threshold == plan.threshold
            && me.is_some_and(|me| plan.new.contains(&me));
        if !valid {
            tracing::warn!(peer = %waiting.from, "refused a reshare announcement that does not match the contract");
            return None;
        }
        if self.in_flight.key_run {
            return Some(waiting);
        }
        if !matches!(self.shared.store.key_share(plan.old_epoch + 1), Ok(None)) {
            return None;
        }
        let (Some(mesh), Some(me)) = (self.mesh.as_ref().map(|m| m.mesh.clone()), me) else {
            return Some(waiting);
        };
        self.start_reshare(mesh, me, plan, waiting.run);
        None
    }
}

/// What the contract's Resharing state asks for.
pub(super) struct ResharePlan {
    old_epoch: u64,
    old: Vec<ParticipantId>,
    new: Vec<ParticipantId>,
    threshold: usize,
    public_key: PublicKey,
    leader: ParticipantId,
}
