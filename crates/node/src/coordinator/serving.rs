//! Serving in an epoch: keeping the stockpile filled and leading the requests that fall to
//! this node.

use super::*;

/// A signature that took more blocks than this from its request is logged.
const SLOW_BLOCKS: u64 = 6;

impl Coordinator {
    pub(super) fn on_tick(&mut self) {
        self.retry_waiting();
        let Some(session) = self.session.clone() else {
            return;
        };
        let ready = self.ready(&session);
        if ready.behind {
            return; // catching up with the chain: peers leave this node out meanwhile
        }
        self.fill_stockpile(&session, &ready.participants);
        if let Some(upcoming) = self.upcoming.clone() {
            self.fill_upcoming(&upcoming);
        }
        self.lead_due_requests(&session, &ready.participants);
    }

    /// The session's participants to start runs with now: up, caught up with the chain, and
    /// not failing runs ([`crate::health`]).
    pub(super) fn ready(&self, session: &Session) -> Ready {
        let heights: Vec<(ParticipantId, Option<u64>)> = session
            .alive_participants()
            .into_iter()
            .map(|p| {
                let height = if p == session.me {
                    Some(self.height)
                } else {
                    session.mesh.status(p).map(|status| status.height)
                };
                (p, height)
            })
            .collect();
        self.health
            .ready(session.me, &heights, session.threshold, Instant::now())
    }

    /// Presignatures of the epoch a reshare is about to switch to, up to the high watermark,
    /// from the triples among the new set. Cheap runs with their own budget: a triple batch
    /// under way must not hold them up, the switch may come any block.
    fn fill_upcoming(&mut self, upcoming: &Session) {
        let alive = self.ready(upcoming).participants;
        let stockpile = &self.setup.config.stockpile;
        let in_flight = self
            .in_flight
            .generations
            .presignatures_in_flight(upcoming.epoch);
        let have = self
            .assets
            .as_ref()
            .map_or(0, |assets| assets.usable_upcoming(&alive))
            + in_flight;
        let wanted = stockpile.presignatures_high.saturating_sub(have);
        let budget = stockpile
            .max_concurrent_generations
            .saturating_sub(in_flight);
        for _ in 0..wanted.min(budget) {
            if !self.start_presignature(upcoming, &alive) {
                break;
            }
        }
    }

    pub(super) fn fill_stockpile(&mut self, session: &Session, alive: &[ParticipantId]) {
        let partners = self.triple_partners(session, alive);
        // Ahead of a reshare this node stays in, stock up on what carries over. Runs with a
        // member who leaves do not count against the budget then: they end with the epoch,
        // and must not hold up the runs whose triples carry over.
        let generations = &self.in_flight.generations;
        let (phase, running) = if partners.len() < alive.len() {
            (Phase::Resharing, generations.owned(Some(&partners)))
        } else {
            (Phase::Serving, generations.owned(None))
        };
        let (triples_in_flight, presignatures_in_flight) = (
            generations.triples_in_flight(),
            generations.presignatures_in_flight(session.epoch),
        );
        let Some(assets) = self.assets.as_mut() else {
            return;
        };
        let levels = StockLevels {
            triples: assets.usable_triples(&partners),
            triples_in_flight,
            presignatures: assets.usable_presignatures(alive),
            presignatures_in_flight,
            generations_running: running,
        };
        for start in self.stockpile.plan(levels, phase) {
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
        let partners = self.triple_partners(session, alive);
        let Some(assets) = self.assets.as_mut() else {
            return false;
        };
        let Some(set) = assets.partner_set(&partners, session.threshold) else {
            return false;
        };
        let first_id = match assets.allocate(&self.shared.store, count as u64) {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(%error, "cannot allocate asset ids");
                return false;
            }
        };
        tracing::debug!(
            epoch = session.epoch,
            first_id,
            count,
            ?set,
            "starting a triple batch"
        );
        let run = Announcement::new(Job::Triples {
            epoch: session.epoch,
            owner: session.me,
            first_id,
            count: count as u32,
            participants: set.clone(),
        });
        let task = tasks::triples(self.shared.clone(), session.clone(), run, true);
        let kind = generations::Kind::Triples(count);
        let run = (kind, session.epoch, true, set);
        self.spawn_generation(session.me, first_id, run, task);
        true
    }

    /// The participants of this epoch a reshare under way leaves out.
    fn leaving_members(&self) -> Vec<ParticipantId> {
        match &self.state {
            Some(ContractState::Resharing {
                old_participants,
                new_participants,
                ..
            }) => {
                let new = contract_state::ids(new_participants);
                contract_state::ids(old_participants)
                    .into_iter()
                    .filter(|p| new.binary_search(p).is_err())
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whom to make new triples with: during a reshare, the live members that stay (if they
    /// are enough, and this node is one), because triples shared with a member who leaves end
    /// with the epoch while the others carry over to the next one.
    fn triple_partners(&self, session: &Session, alive: &[ParticipantId]) -> Vec<ParticipantId> {
        let Some(ContractState::Resharing {
            new_participants, ..
        }) = &self.state
        else {
            return alive.to_vec();
        };
        let staying = contract_state::ids(new_participants);
        let partners: Vec<ParticipantId> = alive
            .iter()
            .copied()
            .filter(|p| staying.binary_search(p).is_ok())
            .collect();
        if partners.contains(&session.me) && partners.len() >= session.threshold {
            partners
        } else {
            alive.to_vec()
        }
    }

    pub(super) fn start_presignature(
        &mut self,
        session: &Session,
        alive: &[ParticipantId],
    ) -> bool {
        // Triples shared with a member who is leaving go first: they end with this epoch.
        let doomed = self.leaving_members();
        let Some(assets) = self.assets.as_mut() else {
            return false;
        };
        let Some((triples, set)) = assets.pick_triples(alive, &doomed) else {
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
            participants: set.clone(),
        });
        tracing::debug!(epoch = session.epoch, id, ?set, "starting a presignature");
        let task = tasks::presignature(self.shared.clone(), session.clone(), run, true);
        let kind = generations::Kind::Presignature;
        let run = (kind, session.epoch, true, set);
        self.spawn_generation(session.me, id, run, task);
        true
    }

    /// Who leads signatures now: live participants of this epoch that lead (they have had a
    /// presignature whose participants are all up, and have not been without one for long:
    /// `LeaderState`; this node from its own state, peers from their status, which they send
    /// the moment it changes). A node that does not (it just joined or restarted, or ran dry)
    /// is passed over, so its requests go to the next in order at once instead of waiting out
    /// `sign_ms`. If nobody leads, every live node counts.
    fn leaders_now(&self, session: &Session, alive: &[ParticipantId]) -> Vec<ParticipantId> {
        self.refresh_mesh_status();
        let mine = self.leading.get();
        let leaders: Vec<ParticipantId> = alive
            .iter()
            .copied()
            .filter(|&p| {
                if p == session.me {
                    return mine.epoch == Some(session.epoch) && mine.leads;
                }
                session.mesh.status(p).is_some_and(|status| {
                    status.serving_epoch == Some(session.epoch) && status.can_lead
                })
            })
            .collect();
        if leaders.is_empty() {
            alive.to_vec()
        } else {
            leaders
        }
    }

    pub(super) fn lead_due_requests(&mut self, session: &Session, alive: &[ParticipantId]) {
        let takeover = Duration::from_millis(self.shared.timeouts.sign_ms);
        let now = Instant::now();
        let leaders = self.leaders_now(session, alive);
        let due = self.book.due(
            session.me,
            &session.participants,
            &leaders,
            takeover,
            (self.height, now),
        );
        if !due.is_empty() {
            // Whether this node still has stock to lead with is what peers decide by.
            self.lead_requests(session, alive, due, takeover, now);
            self.refresh_mesh_status();
        }
    }

    fn lead_requests(
        &mut self,
        session: &Session,
        alive: &[ParticipantId],
        due: Vec<crate::leader::RequestId>,
        takeover: Duration,
        now: Instant,
    ) {
        for id in due {
            if self.book.get(&id).is_none() {
                continue;
            }
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
            tracing::debug!(
                request = %hex::encode(&id[..4]),
                height = pending.seen.height,
                waited_ms = now.duration_since(pending.since).as_millis() as u64,
                attempt = pending.attempts + 1,
                presignature,
                "leading a signature"
            );
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
                answered: self.in_flight.answered_signal(id),
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
                    if blocks > SLOW_BLOCKS {
                        tracing::info!(
                            blocks,
                            attempts = done.attempts,
                            waited_ms = latency.as_millis() as u64,
                            "slow signature"
                        );
                    }
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
                let me = self
                    .session
                    .as_ref()
                    .map_or(ParticipantId(u32::MAX), |s| s.me);
                self.health.run_failed(me, &error.blame, Instant::now());
                // With whom to blame left out (or without the asset a participant lacked), a
                // new run can start at once; otherwise a moment's pause keeps a failure that
                // repeats from spinning.
                let pause = if error.retry_now { 0 } else { 500 };
                self.retry_later(request, Duration::from_millis(pause));
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
