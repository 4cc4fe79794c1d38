//! Serving in an epoch: keeping the stockpile filled and leading the requests that fall to
//! this node.

use super::*;

impl Coordinator {
    pub(super) fn on_tick(&mut self) {
        self.retry_waiting();
        let Some(session) = self.session.clone() else {
            return;
        };
        let alive = session.alive_participants();
        self.fill_stockpile(&session, &alive);
        self.lead_due_requests(&session, &alive);
    }

    pub(super) fn fill_stockpile(&mut self, session: &Session, alive: &[ParticipantId]) {
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

    pub(super) fn start_triples(
        &mut self,
        session: &Session,
        alive: &[ParticipantId],
        count: usize,
    ) -> bool {
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

    pub(super) fn start_presignature(
        &mut self,
        session: &Session,
        alive: &[ParticipantId],
    ) -> bool {
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

    pub(super) fn lead_due_requests(&mut self, session: &Session, alive: &[ParticipantId]) {
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

    pub(super) fn on_signed(&mut self, request: crate::leader::RequestId, outcome: SignOutcome) {
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

    pub(super) fn retry_later(&mut self, request: crate::leader::RequestId, after: Duration) {
        if let Some(pending) = self.book.get_mut(&request) {
            pending.signing = false;
            pending.retry_at = Instant::now() + after;
        }
    }
}
