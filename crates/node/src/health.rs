//! Whom this node puts into the runs it starts: of the participants the mesh hears from,
//! those that have caught up with the chain and have not been failing runs. Plain data, no
//! I/O: the coordinator feeds it heights, outcomes and time.
//!
//! Caught up: a run needs every participant to have seen what it is about (a sign request
//! in the participant's own indexer, the block its entropy comes from), so a node whose
//! indexer is more than [`CATCH_UP_BLOCKS`] behind the others (their median height) is left
//! out; a restarted node resuming from its checkpoint is picked again once it is back. A
//! node that is itself behind starts nothing and does not lead.
//!
//! Failing: a participant that keeps timing out or breaking runs (overloaded, half-broken,
//! or hostile) would cost every run it is in a timeout. After a failed run the participants
//! it blames sit out new runs for a back-off that doubles with each further failure, from
//! [`BENCH_FIRST`] up to [`BENCH_MAX`]; a run with it that succeeds (once its back-off is
//! over) clears its record. Never below the threshold: when too few would be left, the
//! failing ones are tried too, since a run that may fail beats none.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chainsig_primitives::ParticipantId;

/// How far (in blocks) a participant's indexer may be behind and still be picked.
/// Indexers under load drift a few blocks apart (at 100 ms blocks a debug build on two cores
/// does), and a run with a node a block or two behind only waits for its indexer; a node
/// resuming from its checkpoint is tens of blocks behind.
pub const CATCH_UP_BLOCKS: u64 = 5;
/// The first back-off after a failed run.
pub const BENCH_FIRST: Duration = Duration::from_secs(2);
/// The longest back-off.
pub const BENCH_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Failing {
    /// Failed runs in a row.
    failures: u32,
    /// Left out of new runs until then.
    until: Instant,
}

/// The participants to start runs with now, as [`Health::ready`] finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Sorted; this node included unless it is behind.
    pub participants: Vec<ParticipantId>,
    /// This node's own indexer is behind its peers': it should neither lead nor start runs.
    pub behind: bool,
}

#[derive(Debug, Default)]
pub struct Health {
    failing: HashMap<ParticipantId, Failing>,
}

impl Health {
    /// A run failed, and `blamed` are the participants it waited on or that broke it. A
    /// failure while the participant already sits out does not count again: it comes from a
    /// run started before (one crash fails every run the node was in at once), and must not
    /// lengthen its back-off.
    pub fn run_failed(&mut self, me: ParticipantId, blamed: &[ParticipantId], now: Instant) {
        for &peer in blamed.iter().filter(|&&p| p != me) {
            if self.is_benched(peer, now) {
                continue;
            }
            let failures = self.failing.get(&peer).map_or(0, |f| f.failures) + 1;
            let backoff = BENCH_FIRST
                .saturating_mul(1 << (failures - 1).min(16))
                .min(BENCH_MAX);
            self.failing.insert(
                peer,
                Failing {
                    failures,
                    until: now + backoff,
                },
            );
            tracing::info!(%peer, failures, backoff_ms = backoff.as_millis() as u64, "leaving a failing participant out of new runs");
        }
    }

    /// A run among `set` succeeded: whoever of them was failing has recovered.
    pub fn run_succeeded(&mut self, set: &[ParticipantId]) {
        for peer in set {
            if self.failing.remove(peer).is_some() {
                tracing::info!(%peer, "a failing participant is back");
            }
        }
    }

    /// Whether `peer` sits out new runs now.
    pub fn is_benched(&self, peer: ParticipantId, now: Instant) -> bool {
        self.failing.get(&peer).is_some_and(|f| now < f.until)
    }

    /// Forgets everyone who is no longer a participant.
    pub fn retain(&mut self, participants: &[ParticipantId]) {
        self.failing
            .retain(|peer, _| participants.binary_search(peer).is_ok());
    }

    /// Of `alive` (sorted, this node included), with each one's indexer height (`None`: not
    /// known yet), those to start runs with now. Failing participants are left out only
    /// while `threshold` remain without them: a run with one that may fail beats no run.
    pub fn ready(
        &self,
        me: ParticipantId,
        alive: &[(ParticipantId, Option<u64>)],
        threshold: usize,
        now: Instant,
    ) -> Ready {
        let reference = reference_height(alive);
        let caught_up = |height: Option<u64>| {
            height.is_some_and(|h| h.saturating_add(CATCH_UP_BLOCKS) >= reference)
        };
        let behind = !alive
            .iter()
            .any(|&(p, height)| p == me && caught_up(height));
        let caught_up: Vec<ParticipantId> = alive
            .iter()
            .filter(|&&(_, height)| caught_up(height))
            .map(|&(p, _)| p)
            .collect();
        // Neither rule may leave fewer than a threshold: then those behind are tried too
        // (their indexers catch up while the run's announcement waits for them), and so are
        // those failing.
        let usable = if caught_up.len() >= threshold {
            caught_up
        } else {
            alive.iter().map(|&(p, _)| p).collect()
        };
        let healthy: Vec<ParticipantId> = usable
            .iter()
            .copied()
            .filter(|&p| p == me || !self.is_benched(p, now))
            .collect();
        let participants = if healthy.len() >= threshold {
            healthy
        } else {
            usable
        };
        Ready {
            participants,
            behind,
        }
    }
}

/// The height the live participants have reached: the upper median of those known, so that
/// one peer claiming a height far ahead (a bug, or a lie) cannot make everyone else look
/// behind, while a single node catching up (or two of five) is measured against the rest.
fn reference_height(alive: &[(ParticipantId, Option<u64>)]) -> u64 {
    let mut heights: Vec<u64> = alive.iter().filter_map(|&(_, h)| h).collect();
    heights.sort_unstable();
    heights.get(heights.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ME: ParticipantId = ParticipantId(0);

    fn at(list: &[(u32, Option<u64>)]) -> Vec<(ParticipantId, Option<u64>)> {
        list.iter().map(|&(p, h)| (ParticipantId(p), h)).collect()
    }

    fn ids(list: &[u32]) -> Vec<ParticipantId> {
        list.iter().copied().map(ParticipantId).collect()
    }

    #[test]
    fn a_peer_behind_is_left_out_until_it_catches_up() {
        let health = Health::default();
        let now = Instant::now();
        let behind = at(&[(0, Some(100)), (1, Some(99)), (2, Some(90)), (3, None)]);
        assert_eq!(
            health.ready(ME, &behind, 1, now),
            Ready {
                participants: ids(&[0, 1]),
                behind: false
            }
        );
        let caught_up = at(&[(0, Some(100)), (1, Some(99)), (2, Some(97)), (3, Some(101))]);
        assert_eq!(
            health.ready(ME, &caught_up, 1, now).participants,
            ids(&[0, 1, 2, 3])
        );
    }

    #[test]
    fn one_peer_claiming_a_height_far_ahead_leaves_the_rest_caught_up() {
        let health = Health::default();
        let liar = at(&[(0, Some(100)), (1, Some(100)), (2, Some(u64::MAX))]);
        let ready = health.ready(ME, &liar, 1, Instant::now());
        assert!(!ready.behind);
        assert_eq!(ready.participants, ids(&[0, 1, 2]));
    }

    #[test]
    fn a_node_that_is_behind_itself_starts_nothing() {
        let health = Health::default();
        let ready = health.ready(
            ME,
            &at(&[(0, Some(50)), (1, Some(100)), (2, Some(100))]),
            1,
            Instant::now(),
        );
        assert!(ready.behind);
        assert!(!ready.participants.contains(&ME));
    }

    #[test]
    fn failing_participants_sit_out_a_growing_back_off_and_come_back() {
        let mut health = Health::default();
        let start = Instant::now();
        let peers = at(&[(0, Some(10)), (1, Some(10)), (2, Some(10))]);
        health.run_failed(ME, &ids(&[2, 0]), start);
        assert!(!health.is_benched(ME, start), "never benches itself");
        // The other runs it was in fail too, at once: that is still one failure.
        for _ in 0..10 {
            health.run_failed(ME, &ids(&[2]), start + Duration::from_millis(10));
        }
        assert_eq!(
            health.ready(ME, &peers, 1, start).participants,
            ids(&[0, 1])
        );
        let after_first = start + BENCH_FIRST;
        assert_eq!(
            health.ready(ME, &peers, 1, after_first).participants,
            ids(&[0, 1, 2])
        );
        // Fails again once back: twice as long.
        health.run_failed(ME, &ids(&[2]), after_first);
        assert!(health.is_benched(ParticipantId(2), after_first + BENCH_FIRST));
        assert!(!health.is_benched(ParticipantId(2), after_first + 2 * BENCH_FIRST));
        // A run with it succeeds: its record is clean, the next failure costs BENCH_FIRST.
        health.run_succeeded(&ids(&[0, 1, 2]));
        let later = after_first + 2 * BENCH_FIRST;
        health.run_failed(ME, &ids(&[2]), later);
        assert!(!health.is_benched(ParticipantId(2), later + BENCH_FIRST));
    }

    #[test]
    fn failing_participants_still_serve_when_too_few_are_left_without_them() {
        let mut health = Health::default();
        let now = Instant::now();
        let peers = at(&[(0, Some(10)), (1, Some(10)), (2, Some(10))]);
        health.run_failed(ME, &ids(&[2]), now);
        assert_eq!(health.ready(ME, &peers, 2, now).participants, ids(&[0, 1]));
        assert_eq!(
            health.ready(ME, &peers, 3, now).participants,
            ids(&[0, 1, 2])
        );
    }

    #[test]
    fn those_behind_are_tried_when_too_few_are_caught_up() {
        let health = Health::default();
        let now = Instant::now();
        let peers = at(&[(0, Some(100)), (1, Some(100)), (2, Some(80))]);
        assert_eq!(health.ready(ME, &peers, 2, now).participants, ids(&[0, 1]));
        assert_eq!(
            health.ready(ME, &peers, 3, now).participants,
            ids(&[0, 1, 2])
        );
    }

    #[test]
    fn the_back_off_is_capped() {
        let mut health = Health::default();
        let mut at = Instant::now();
        // It fails again each time its back-off is over, many times over.
        for _ in 0..20 {
            health.run_failed(ME, &ids(&[1]), at);
            while health.is_benched(ParticipantId(1), at) {
                at += Duration::from_secs(1);
            }
        }
        health.run_failed(ME, &ids(&[1]), at);
        let one = ParticipantId(1);
        assert!(health.is_benched(one, at + BENCH_MAX - Duration::from_millis(1)));
        assert!(!health.is_benched(one, at + BENCH_MAX));
    }

    proptest! {
        /// Whatever the heights and failures, the ready set is everyone caught up who is not
        /// failing, in order; each rule is dropped when it would leave fewer than the
        /// threshold.
        #[test]
        fn ready_is_the_caught_up_and_healthy_part_of_alive(
            heights in proptest::collection::btree_map(0u32..10, proptest::option::of(0u64..20), 1..10),
            failed in proptest::collection::vec(0u32..10, 0..5),
        ) {
            let mut heights = heights;
            heights.entry(0).or_insert(Some(10));
            let alive: Vec<_> = heights.iter().map(|(&p, &h)| (ParticipantId(p), h)).collect();
            let mut health = Health::default();
            let now = Instant::now();
            health.run_failed(ME, &ids(&failed), now);
            let ready = health.ready(ME, &alive, 1, now);
            let mut known: Vec<u64> = alive.iter().filter_map(|&(_, h)| h).collect();
            known.sort();
            let median = known.get(known.len() / 2).copied().unwrap_or(0);
            let caught: Vec<ParticipantId> = alive
                .iter()
                .filter(|&&(_, h)| h.is_some_and(|h| h + CATCH_UP_BLOCKS >= median))
                .map(|&(p, _)| p)
                .collect();
            let usable: Vec<ParticipantId> = if caught.is_empty() {
                alive.iter().map(|&(p, _)| p).collect()
            } else {
                caught.clone()
            };
            let healthy: Vec<ParticipantId> = usable
                .iter()
                .copied()
                .filter(|&p| p == ME || !failed.contains(&p.0))
                .collect();
            let expected = if healthy.is_empty() { usable } else { healthy };
            prop_assert_eq!(ready.behind, !caught.contains(&ME));
            prop_assert_eq!(ready.participants, expected);
        }
    }
}
