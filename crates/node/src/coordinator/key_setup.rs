//! Getting a key share: key generation among the initial candidates, and voting the key.

use super::*;

impl Coordinator {
    pub(super) fn generate_or_vote_key(
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
}
