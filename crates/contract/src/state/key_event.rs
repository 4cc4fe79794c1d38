//! Key events (key generation, reshares) run in attempts. The contract keeps the clock: an
//! event that began at block `started_at` is in attempt `k` during blocks
//! `started_at + k·attempt_blocks ..` up to the next attempt. Each attempt has one leader,
//! rotating over the members that may lead, so that a dead or stuck leader costs one attempt,
//! not the event. Nothing has to call the contract for an attempt to end: the attempt is a
//! function of the block height, and [`super::Governance::settle`] brings the stored state up
//! to date (clearing the votes of an attempt that is over) before any call reads it.

use chainsig_primitives::ParticipantId;
use near_sdk::borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// How long attempts last and how many a reshare gets before the contract cancels it. Taken
/// from the config when an event begins, so a later config change does not move a running
/// event's deadlines.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize,
)]
#[borsh(crate = "near_sdk::borsh")]
pub struct AttemptRules {
    /// Blocks per attempt (at least 1).
    pub attempt_blocks: u64,
    /// A reshare whose attempts all failed is cancelled after this many (at least 1). Key
    /// generation has nothing to fall back to and retries for as long as it takes.
    pub max_attempts: u32,
}

/// The attempt under way, as the nodes read it from `state()`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize,
)]
#[borsh(crate = "near_sdk::borsh")]
pub struct Attempt {
    /// 0 for the first attempt of the event, then 1, 2, ...
    pub id: u64,
    /// The member that starts this attempt's protocol run.
    #[borsh(
        serialize_with = "super::borsh_ext::ser_participant_id",
        deserialize_with = "super::borsh_ext::de_participant_id"
    )]
    pub leader: ParticipantId,
    /// The first block after this attempt: votes for it are refused from then on.
    pub deadline: u64,
}

/// One key event's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "near_sdk::borsh")]
pub struct KeyEvent {
    /// The block the event began in.
    pub started_at: u64,
    pub rules: AttemptRules,
    /// The attempt as of the last time the state was settled.
    pub attempt: Attempt,
}

impl KeyEvent {
    /// An event beginning at block `now`, led in turn by `leaders` (sorted, not empty),
    /// starting with the one at `first_leader` (taken modulo their number).
    pub fn begin(
        now: u64,
        rules: AttemptRules,
        leaders: &[ParticipantId],
        first_leader: u64,
    ) -> Self {
        let rules = AttemptRules {
            attempt_blocks: rules.attempt_blocks.max(1),
            max_attempts: rules.max_attempts.max(1),
        };
        let mut event = Self {
            started_at: now,
            rules,
            attempt: Attempt {
                id: 0,
                leader: ParticipantId(0),
                deadline: 0,
            },
        };
        event.attempt = event.attempt_at(0, leaders, first_leader);
        event
    }

    /// Which attempt block `now` falls in.
    pub fn attempt_id_at(&self, now: u64) -> u64 {
        now.saturating_sub(self.started_at) / self.rules.attempt_blocks
    }

    fn attempt_at(&self, id: u64, leaders: &[ParticipantId], first_leader: u64) -> Attempt {
        let leader = match leaders.len() as u64 {
            0 => ParticipantId(0),
            n => leaders[(first_leader.wrapping_add(id) % n) as usize],
        };
        let deadline = id
            .saturating_add(1)
            .saturating_mul(self.rules.attempt_blocks)
            .saturating_add(self.started_at);
        Attempt {
            id,
            leader,
            deadline,
        }
    }

    /// Moves the clock to block `now`; returns whether a new attempt began (the votes of the
    /// one before no longer count).
    pub fn advance(&mut self, now: u64, leaders: &[ParticipantId], first_leader: u64) -> bool {
        let id = self.attempt_id_at(now);
        if id == self.attempt.id {
            return false;
        }
        self.attempt = self.attempt_at(id, leaders, first_leader);
        true
    }

    /// Whether the attempts are used up at block `now` (reshares only).
    pub fn exhausted_at(&self, now: u64) -> bool {
        self.attempt_id_at(now) >= u64::from(self.rules.max_attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u32]) -> Vec<ParticipantId> {
        list.iter().copied().map(ParticipantId).collect()
    }

    const RULES: AttemptRules = AttemptRules {
        attempt_blocks: 10,
        max_attempts: 3,
    };

    #[test]
    fn attempts_follow_the_block_height_and_rotate_leaders() {
        let leaders = ids(&[1, 4, 7]);
        let mut event = KeyEvent::begin(100, RULES, &leaders, 1);
        assert_eq!(
            event.attempt,
            Attempt {
                id: 0,
                leader: ParticipantId(4),
                deadline: 110
            }
        );
        assert!(!event.advance(109, &leaders, 1));
        assert!(event.advance(110, &leaders, 1));
        assert_eq!(event.attempt.id, 1);
        assert_eq!(event.attempt.leader, ParticipantId(7));
        assert_eq!(event.attempt.deadline, 120);
        assert!(event.advance(125, &leaders, 1));
        assert_eq!(event.attempt.leader, ParticipantId(1), "wraps around");
        assert!(!event.exhausted_at(129));
        assert!(event.exhausted_at(130));
        // A clock that is behind (or a height before the start) never panics or goes back.
        assert_eq!(event.attempt_id_at(0), 0);
    }

    #[test]
    fn zero_rules_are_raised_to_one() {
        let event = KeyEvent::begin(
            5,
            AttemptRules {
                attempt_blocks: 0,
                max_attempts: 0,
            },
            &ids(&[0]),
            0,
        );
        assert_eq!(event.rules.attempt_blocks, 1);
        assert_eq!(event.rules.max_attempts, 1);
        assert_eq!(event.attempt.deadline, 6);
        let far = KeyEvent::begin(u64::MAX - 1, RULES, &ids(&[0]), 0);
        assert_eq!(far.attempt.deadline, u64::MAX, "saturates");
    }
}
