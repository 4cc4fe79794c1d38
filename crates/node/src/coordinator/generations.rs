//! The triple and presignature runs under way on this node, its own and those it follows,
//! each with who takes part and a handle to stop it. The stockpile counts them; an epoch
//! switch stops those that cannot finish or are of no use any more (a member left, or a
//! presignature of the epoch that ended), so they do not hold the CPU and the budget that
//! the new epoch's stock needs.

use std::collections::HashMap;

use chainsig_primitives::ParticipantId;
use tokio::task::AbortHandle;

use crate::storage::AssetId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A batch of this many triples.
    Triples(usize),
    Presignature,
}

pub(super) struct Generation {
    pub kind: Kind,
    /// The epoch it was started in (a presignature's key share is of this epoch).
    pub epoch: u64,
    /// This node owns it (else it follows a peer's).
    pub mine: bool,
    pub participants: Vec<ParticipantId>,
    pub abort: AbortHandle,
}

/// Runs by (owner, first asset id): unique, since an owner never reuses an id.
#[derive(Default)]
pub(super) struct Generations {
    runs: HashMap<(ParticipantId, AssetId), Generation>,
}

impl Generations {
    pub fn start(&mut self, owner: ParticipantId, id: AssetId, run: Generation) {
        self.runs.insert((owner, id), run);
    }

    /// The run ended by itself; `None` if it had been stopped.
    pub fn finish(&mut self, owner: ParticipantId, id: AssetId) -> Option<Generation> {
        self.runs.remove(&(owner, id))
    }

    fn mine(&self) -> impl Iterator<Item = &Generation> {
        self.runs.values().filter(|run| run.mine)
    }

    /// Triples this node's own batches will add.
    pub fn triples_in_flight(&self) -> usize {
        self.mine()
            .map(|run| match run.kind {
                Kind::Triples(count) => count,
                Kind::Presignature => 0,
            })
            .sum()
    }

    /// This node's own presignature runs of `epoch`.
    pub fn presignatures_in_flight(&self, epoch: u64) -> usize {
        self.mine()
            .filter(|run| run.kind == Kind::Presignature && run.epoch == epoch)
            .count()
    }

    /// This node's own runs among `within` only (all of them when `None`).
    pub fn owned(&self, within: Option<&[ParticipantId]>) -> usize {
        self.mine()
            .filter(|run| within.is_none_or(|w| run.participants.iter().all(|p| w.contains(p))))
            .count()
    }

    /// Runs of `kind`'s sort (triples or presignatures) this node follows.
    pub fn followed(&self, triples: bool) -> usize {
        self.runs
            .values()
            .filter(|run| !run.mine && matches!(run.kind, Kind::Triples(_)) == triples)
            .count()
    }

    /// Stops the presignature runs of `epoch`; returns how many.
    pub fn stop_presignatures_of(&mut self, epoch: u64) -> usize {
        let before = self.runs.len();
        self.runs.retain(|_, run| {
            let stop = run.kind == Kind::Presignature && run.epoch == epoch;
            if stop {
                run.abort.abort();
            }
            !stop
        });
        before - self.runs.len()
    }

    /// Switching to `epoch` among `members` (sorted): stops every presignature run of another
    /// epoch, and every run with someone outside `members`; returns how many.
    pub fn stop_for_epoch(&mut self, epoch: u64, members: &[ParticipantId]) -> usize {
        let before = self.runs.len();
        self.runs.retain(|_, run| {
            let keeps = (run.kind != Kind::Presignature || run.epoch == epoch)
                && run
                    .participants
                    .iter()
                    .all(|p| members.binary_search(p).is_ok());
            if !keeps {
                run.abort.abort();
            }
            keeps
        });
        before - self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u32]) -> Vec<ParticipantId> {
        list.iter().copied().map(ParticipantId).collect()
    }

    #[tokio::test]
    async fn an_epoch_switch_stops_what_cannot_carry_over() {
        let mut runs = Generations::default();
        let task = |_: ()| tokio::spawn(std::future::pending::<()>());
        let mut handles = Vec::new();
        for (owner, id, kind, epoch, mine, set) in [
            (0, 1, Kind::Triples(8), 0, true, ids(&[0, 1])),
            (0, 9, Kind::Triples(4), 0, true, ids(&[0, 3])),
            (0, 20, Kind::Presignature, 0, true, ids(&[0, 1])),
            (1, 5, Kind::Triples(8), 0, false, ids(&[0, 1])),
            (0, 30, Kind::Presignature, 1, true, ids(&[0, 1])),
        ] {
            let handle = task(());
            runs.start(
                ParticipantId(owner),
                id,
                Generation {
                    kind,
                    epoch,
                    mine,
                    participants: set,
                    abort: handle.abort_handle(),
                },
            );
            handles.push(handle);
        }
        assert_eq!(runs.triples_in_flight(), 12);
        assert_eq!(runs.presignatures_in_flight(0), 1);
        assert_eq!(runs.owned(None), 4);
        assert_eq!(runs.owned(Some(&ids(&[0, 1, 2]))), 3);
        assert_eq!(runs.followed(true), 1);
        assert_eq!(runs.followed(false), 0);

        // Epoch 1 among {0,1,2}: member 3's triple run and epoch 0's presignature stop; epoch
        // 1's presignature (made before the switch) goes on.
        assert_eq!(runs.stop_for_epoch(1, &ids(&[0, 1, 2])), 2);
        assert_eq!(runs.presignatures_in_flight(1), 1);
        assert_eq!(runs.triples_in_flight(), 8);
        assert!(
            runs.finish(ParticipantId(0), 9).is_none(),
            "already stopped"
        );
        assert!(runs.finish(ParticipantId(1), 5).is_some());
        for (i, handle) in handles.into_iter().enumerate() {
            if i == 1 || i == 2 {
                assert!(handle.await.unwrap_err().is_cancelled(), "run {i} stopped");
            } else {
                handle.abort();
            }
        }
    }
}
