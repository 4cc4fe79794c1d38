//! Peers' announcements: checked, then joined at once or kept until this node is ready for
//! them (its indexer has seen the request, the run that makes the inputs has finished here).

use super::*;

impl Coordinator {
    pub(super) fn on_announcement(&mut self, from: ParticipantId, body: Vec<u8>) {
        let run = match Announcement::received(body) {
            Ok(run) => run,
            Err(error) => {
                tracing::warn!(peer = %from, %error, "refused an announcement");
                return;
            }
        };
        let until = Instant::now() + ANNOUNCEMENT_PATIENCE;
        if let Some(waiting) = self.try_follow(Waiting {
            from,
            run,
            until,
            why: "",
        }) {
            self.keep_waiting(waiting);
        }
    }

    /// Keeps an announcement for later, within a bound: a peer flooding announcements this
    /// node cannot act on must not grow its memory.
    fn keep_waiting(&mut self, waiting: Waiting) {
        if self.waiting.len() >= MAX_WAITING {
            tracing::warn!(peer = %waiting.from, "too many announcements waiting; dropped one");
            return;
        }
        self.waiting.push(waiting);
    }

    pub(super) fn retry_waiting(&mut self) {
        let now = Instant::now();
        for waiting in std::mem::take(&mut self.waiting) {
            if waiting.until < now {
                tracing::warn!(peer = %waiting.from, job = %waiting.run.job.summary(), waited_for = waiting.why, "gave up on an announcement this node was not ready for");
                if let Some(mesh) = &self.mesh {
                    tasks::decline(&mesh.mesh, waiting.from, waiting.run.instance());
                }
                continue;
            }
            if let Some(waiting) = self.try_follow(waiting) {
                self.keep_waiting(waiting);
            }
        }
    }

    /// Joins the announced run, or hands the announcement back when this node is not ready
    /// for it yet. Refused announcements are logged and dropped.
    pub(super) fn try_follow(&mut self, waiting: Waiting) -> Option<Waiting> {
        match waiting.run.job {
            Job::Keygen { .. } => return self.follow_keygen(waiting),
            Job::Reshare { .. } => return self.follow_reshare(waiting),
            _ => {}
        }
        let Some(session) = self.session_for(&waiting.run.job) else {
            return waiting.because("a session of this epoch");
        };
        let members = Membership {
            epoch: session.epoch,
            me: session.me,
            participants: &session.participants,
            threshold: session.threshold,
        };
        match waiting.run.job.check(waiting.from, &members) {
            Ok(()) => {}
            Err(JobError::Epoch(epoch)) if epoch > session.epoch => {
                return waiting.because("the epoch it names")
            }
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
            Job::Keygen { .. } | Job::Reshare { .. } => None,
        }
    }

    /// The session an announcement belongs to: the current one, the upcoming one (for a
    /// presignature of the epoch a reshare is about to switch to), or the retiring one (for a
    /// signature a peer began just before the switch). `None`: not yet (wait).
    fn session_for(&mut self, job: &Job) -> Option<Session> {
        if let (Job::Presignature { epoch, .. }, Some(upcoming)) = (job, &self.upcoming) {
            if *epoch == upcoming.epoch {
                return Some(upcoming.clone());
            }
        }
        let current = self.session.clone()?;
        if let (Job::Sign { epoch, .. }, Some(retiring)) = (job, self.retiring_session()) {
            if *epoch == retiring.epoch && *epoch != current.epoch {
                return Some(retiring);
            }
        }
        Some(current)
    }

    pub(super) fn follow_generation(
        &mut self,
        session: Session,
        waiting: Waiting,
    ) -> Option<Waiting> {
        // Triple batches are heavy: a bound on how many this node follows. Presignatures
        // take a millisecond and must not queue behind them (the next epoch's first stock is
        // presignatures), so they have their own, larger bound.
        let limit =
            self.setup.config.stockpile.max_concurrent_generations * session.participants.len();
        let triples = matches!(waiting.run.job, Job::Triples { .. });
        let bound = if triples { limit } else { 4 * limit };
        if self.in_flight.generations.followed(triples) >= bound {
            return waiting.because("room among the generations this node follows");
        }
        if let Job::Presignature { owner, triples, .. } = &waiting.run.job {
            // The owner may finish the triples' run a moment before this node does.
            let stored = self.shared.store.triple_ids(*owner, usize::MAX);
            let have = stored.is_ok_and(|ids| triples.iter().all(|t| ids.contains(t)));
            if !have {
                return waiting.because("the owner's triples in this node's storage");
            }
        }
        let (owner, id, kind, participants) = match &waiting.run.job {
            Job::Triples {
                owner,
                first_id,
                count,
                participants,
                ..
            } => (
                *owner,
                *first_id,
                generations::Kind::Triples(*count as usize),
                participants.clone(),
            ),
            Job::Presignature {
                owner,
                id,
                participants,
                ..
            } => (
                *owner,
                *id,
                generations::Kind::Presignature,
                participants.clone(),
            ),
            _ => return None,
        };
        let epoch = session.epoch;
        let shared = self.shared.clone();
        let task: std::pin::Pin<Box<dyn std::future::Future<Output = Done> + Send>> = match kind {
            generations::Kind::Triples(_) => {
                Box::pin(tasks::triples(shared, session, waiting.run, false))
            }
            generations::Kind::Presignature => {
                Box::pin(tasks::presignature(shared, session, waiting.run, false))
            }
        };
        let run = (kind, epoch, false, participants);
        self.spawn_generation(owner, id, run, task);
        None
    }

    pub(super) fn follow_signature(
        &mut self,
        session: Session,
        waiting: Waiting,
    ) -> Option<Waiting> {
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
            return waiting.because("the request, seen by this node's indexer");
        };
        if pending.seen.height != *height || pending.seen.entropy != *entropy {
            tracing::warn!(peer = %waiting.from, "refused a signature for a request seen in another block");
            return None;
        }
        let stored = self.shared.store.presignature_ids(*leader, usize::MAX);
        if !stored.is_ok_and(|ids| ids.contains(presignature)) {
            return waiting.because("the leader's presignature in this node's storage");
        }
        let inputs = SignInputs {
            request: *request,
            request_id: id,
            height: *height,
            entropy: *entropy,
            seen_at: pending.since,
            answered: self.in_flight.answered_signal(id),
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
}
