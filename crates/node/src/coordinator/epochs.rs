//! Which epoch this node signs in, and the end of epochs.
//!
//! A participant serves the epoch the contract names: the old one while a reshare runs (the
//! old set keeps signing), the new one once the contract is Running in it. At the switch the
//! old session retires: for a few seconds it still follows signatures peers began in it (a
//! peer may see the new state a moment later than this node), then it is gone. Only then, and
//! only while this node holds the new epoch's share, does storage drop the old epoch's key
//! share and presignatures and the triples of members who left. A node that is no longer a
//! participant drops all of its key material.

use super::*;
use crate::storage::TripleRule;

/// Set once this node has served as a participant; after it is voted out, it does not ask to
/// join again by itself.
const SERVED_CHECKPOINT: &str = "served";

/// The epoch before the current one, kept for peers' runs begun in it.
pub(super) struct Retiring {
    pub session: Session,
    pub until: Instant,
}

impl Coordinator {
    /// Serves `epoch` among `members`, switching from another epoch if need be.
    pub(super) fn ensure_session(
        &mut self,
        epoch: u64,
        me: ParticipantId,
        members: &[Member],
        threshold: usize,
        public_key: &str,
    ) {
        let participants = contract_state::ids(members);
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.epoch == epoch && s.participants == participants)
        {
            return;
        }
        let Some(mesh) = self.mesh.as_ref().map(|m| m.mesh.clone()) else {
            return;
        };
        let key = match self.load_key_share(epoch, public_key) {
            Ok(key) => key,
            Err(problem) => {
                self.report_problem(problem);
                self.stop_serving();
                return;
            }
        };
        let assets = OwnedAssets::load(&self.shared.store, me, epoch, &participants, threshold);
        let assets = match assets {
            Ok(assets) => assets,
            Err(error) => {
                self.report_problem(format!("cannot read the stockpile: {error}"));
                return;
            }
        };
        self.problem = None;
        let (triples, presignatures) = assets.counts();
        tracing::info!(epoch, me = %me, triples, presignatures, "serving");
        if let Err(error) = self.shared.store.set_checkpoint(SERVED_CHECKPOINT, epoch) {
            tracing::warn!(%error, "cannot record that this node serves");
        }
        let stopped = self
            .in_flight
            .generations
            .stop_for_epoch(epoch, &participants);
        if stopped > 0 {
            tracing::info!(stopped, "stopped generation runs the new epoch cannot use");
        }
        self.health.retain(&participants);
        if let Some(old) = self.session.take() {
            if old.epoch != epoch {
                let grace = Duration::from_millis(self.shared.timeouts.sign_ms);
                self.retiring = Some(Retiring {
                    session: old,
                    until: Instant::now() + grace,
                });
            }
        }
        self.assets = Some(assets);
        self.session = Some(Session {
            epoch,
            me,
            participants,
            threshold,
            key: Arc::new(key),
            mesh,
        });
    }

    /// During a reshare: once this node holds its share of the new epoch from the current
    /// attempt, the upcoming session makes that epoch's presignatures ahead of the switch (from
    /// triples among the new set), so the new epoch starts with stock. A share from another
    /// attempt ends it: presignatures of that share do not fit the others' shares.
    pub(super) fn ensure_upcoming(
        &mut self,
        epoch: u64,
        attempt: u64,
        members: &[Member],
        threshold: usize,
        public_key: &str,
    ) {
        let holds =
            matches!(self.shared.store.key_share_attempt(epoch), Ok(Some(a)) if a == attempt);
        let participants = contract_state::ids(members);
        let current = self.upcoming.as_ref().is_some_and(|u| {
            u.epoch == epoch && u.participants == participants && self.upcoming_attempt == attempt
        });
        if holds && current {
            return;
        }
        if self.upcoming.take().is_some() {
            let stopped = self.in_flight.generations.stop_presignatures_of(epoch);
            tracing::info!(
                epoch,
                stopped,
                "upcoming epoch's share changed: its presignatures restart"
            );
        }
        let me = self.mesh.as_ref().map(|m| (m.me, m.mesh.clone()));
        let (true, Some((me, mesh)), Some(_)) = (holds, me, self.assets.as_ref()) else {
            if let Some(assets) = self.assets.as_mut() {
                let _ = assets.track_upcoming(&self.shared.store, None);
            }
            return;
        };
        let Ok(key) = self.load_key_share(epoch, public_key) else {
            return;
        };
        if let Some(assets) = self.assets.as_mut() {
            if let Err(error) = assets.track_upcoming(&self.shared.store, Some(epoch)) {
                tracing::error!(%error, "cannot read the stockpile");
                return;
            }
        }
        tracing::info!(epoch, attempt, "making presignatures of the upcoming epoch");
        self.upcoming_attempt = attempt;
        self.upcoming = Some(Session {
            epoch,
            me,
            participants,
            threshold,
            key: Arc::new(key),
            mesh,
        });
    }

    /// This node's share of `epoch`, checked against the contract's root key.
    fn load_key_share(
        &self,
        epoch: u64,
        public_key: &str,
    ) -> Result<chainsig_mpc::KeyShare, String> {
        let key = match self.shared.store.key_share(epoch) {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Err(format!(
                    "a participant without its key share for epoch {epoch}: cannot sign; \
                     the next reshare gives it one"
                ))
            }
            Err(error) => return Err(format!("cannot read the key share: {error}")),
        };
        let matches = PublicKey::parse(public_key)
            .is_ok_and(|contract_key| contract_key.as_affine() == &key.public_key);
        if !matches {
            return Err(format!(
                "the stored key share of epoch {epoch} is not for the contract's public key"
            ));
        }
        Ok(key)
    }

    /// Logs a problem once (until it changes) and shows it on `/health`.
    pub(super) fn report_problem(&mut self, problem: String) {
        if self.problem.as_ref() != Some(&problem) {
            tracing::error!(%problem, "this node cannot do its part");
        }
        self.problem = Some(problem);
    }

    pub(super) fn stop_serving(&mut self) {
        if self.session.take().is_some() {
            tracing::info!("no longer serving in this epoch");
        }
        self.retiring = None;
        self.assets = None;
    }

    /// The retiring session, while it may still follow peers' runs.
    pub(super) fn retiring_session(&mut self) -> Option<Session> {
        if self
            .retiring
            .as_ref()
            .is_some_and(|r| r.until <= Instant::now())
        {
            self.retiring = None;
        }
        self.retiring.as_ref().map(|r| r.session.clone())
    }

    /// Once the old epoch has retired, removes from storage what the running `epoch` cannot
    /// use. Runs once per epoch (and again after a restart: it is idempotent).
    pub(super) fn prune_when_settled(&mut self, epoch: u64, members: &[Member], threshold: usize) {
        let serving = self.session.as_ref().is_some_and(|s| s.epoch == epoch);
        if !serving || self.pruned_epoch == Some(epoch) || self.retiring_session().is_some() {
            return;
        }
        let participants = contract_state::ids(members);
        let rule = TripleRule {
            members: &participants,
            threshold,
        };
        match self.shared.store.prune_to_epoch(epoch, &rule) {
            Ok(pruned) => {
                if !pruned.is_empty() {
                    tracing::info!(
                        epoch,
                        key_shares = pruned.key_shares,
                        presignatures = pruned.presignatures,
                        triples = pruned.triples,
                        "removed what earlier epochs left"
                    );
                }
                self.pruned_epoch = Some(epoch);
            }
            Err(error) => tracing::error!(%error, "cannot remove old key material"),
        }
    }

    /// Whether this node served as a participant before (and so was voted out, rather than
    /// never admitted): such a node does not ask to join again by itself.
    pub(super) fn served_before(&self) -> bool {
        matches!(self.shared.store.checkpoint(SERVED_CHECKPOINT), Ok(Some(_)))
    }

    /// No longer a participant: stop, and remove every key share and asset this node holds
    /// (a removed participant's share must end with its epoch).
    pub(super) fn leave_network(&mut self) {
        self.stop_serving();
        self.problem = None;
        // Its peers no longer accept it: stop dialing them.
        if let Some(mesh) = self.mesh.take() {
            mesh.mesh.stop();
            tracing::info!("not a participant: mesh stopped");
        }
        let holds = self.shared.store.key_share_epochs();
        if !holds.as_ref().is_ok_and(|epochs| !epochs.is_empty()) {
            return;
        }
        match self.shared.store.forget_key_material() {
            Ok(pruned) => tracing::info!(
                key_shares = pruned.key_shares,
                presignatures = pruned.presignatures,
                triples = pruned.triples,
                "not a participant any more: removed this node's key material"
            ),
            Err(error) => tracing::error!(%error, "cannot remove old key material"),
        }
        self.pruned_epoch = None;
    }
}
