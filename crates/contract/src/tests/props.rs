//! Property tests: random sequences of governance calls from participants, candidates and
//! outsiders, with blocks passing between them (attempts end, reshares run out of attempts).
//! Whatever is accepted or refused, every reachable state keeps the invariants: threshold ≤
//! members, no duplicate accounts or ids, the running epoch never goes back and a finished
//! reshare's epoch was never used before, the root key never changes once set, ids are never
//! reused, votes count once and only from those allowed, refusals change nothing.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::state::{RULES, T0};
use super::{account, candidate, root_key};
use crate::state::{Governance, ParticipantInfo, ProtocolState};

const ACCOUNTS: usize = 7;

fn name(i: usize) -> String {
    format!("acct{i}.near")
}

#[derive(Debug, Clone)]
enum Op {
    VotePk {
        voter: usize,
        key: u64,
        attempt_delta: i8,
    },
    Join {
        who: usize,
    },
    VoteJoin {
        voter: usize,
        candidate: usize,
    },
    VoteLeave {
        voter: usize,
        leaving: usize,
    },
    VoteReshared {
        voter: usize,
        epoch_delta: i8,
        attempt_delta: i8,
    },
    VoteCancel {
        voter: usize,
    },
    /// Blocks pass.
    Wait {
        blocks: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..ACCOUNTS;
    // Mostly the current epoch, so that reshares finish and epochs climb.
    let delta = || prop_oneof![6 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8), 1 => Just(2i8)];
    prop_oneof![
        3 => (who.clone(), 1u64..3, delta())
            .prop_map(|(voter, key, attempt_delta)| Op::VotePk { voter, key, attempt_delta }),
        2 => who.clone().prop_map(|who| Op::Join { who }),
        3 => (who.clone(), who.clone())
            .prop_map(|(voter, candidate)| Op::VoteJoin { voter, candidate }),
        2 => (who.clone(), who.clone()).prop_map(|(voter, leaving)| Op::VoteLeave { voter, leaving }),
        6 => (who.clone(), delta(), delta()).prop_map(|(voter, epoch_delta, attempt_delta)| {
            Op::VoteReshared { voter, epoch_delta, attempt_delta }
        }),
        1 => who.prop_map(|voter| Op::VoteCancel { voter }),
        1 => (1u64..=RULES.attempt_blocks * 2).prop_map(|blocks| Op::Wait { blocks }),
    ]
}

fn check_members(members: &[ParticipantInfo], threshold: u32, next_id: u32) {
    assert!(threshold >= 1);
    assert!(
        threshold as usize <= members.len(),
        "threshold above member count"
    );
    let accounts: BTreeSet<_> = members.iter().map(|p| &p.account_id).collect();
    let ids: BTreeSet<_> = members.iter().map(|p| p.id).collect();
    assert_eq!(accounts.len(), members.len(), "duplicate account");
    assert_eq!(ids.len(), members.len(), "duplicate id");
    assert!(
        members.iter().all(|p| p.id.0 < next_id),
        "id not yet assigned"
    );
}

fn check(g: &Governance) {
    match &g.state {
        ProtocolState::NotInitialized => {}
        ProtocolState::Initializing(s) => {
            check_members(&s.candidates, s.threshold, g.next_participant_id);
            let voters: Vec<_> = s.pk_votes.iter().flat_map(|v| &v.voters).collect();
            let unique: BTreeSet<_> = voters.iter().collect();
            assert_eq!(voters.len(), unique.len(), "a candidate voted twice");
            assert!(s
                .pk_votes
                .iter()
                .all(|v| v.voters.len() < s.candidates.len()));
        }
        ProtocolState::Running(s) => {
            check_members(&s.participants, s.threshold, g.next_participant_id);
            assert!(s.candidates.len() <= crate::state::MAX_CANDIDATES);
            for c in &s.candidates {
                assert!(s.participants.iter().all(|p| p.account_id != c.account_id));
            }
            let members: BTreeSet<_> = s.participants.iter().map(|p| &p.account_id).collect();
            for voters in s.join_votes.iter().chain(&s.leave_votes).map(|v| &v.voters) {
                let unique: BTreeSet<_> = voters.iter().collect();
                assert_eq!(unique.len(), voters.len(), "double vote");
                assert!(
                    voters.iter().all(|v| members.contains(v)),
                    "outsider vote counted"
                );
                assert!((voters.len() as u32) < s.threshold);
            }
        }
        ProtocolState::Resharing(s) => {
            check_members(&s.old_participants, s.threshold, g.next_participant_id);
            check_members(&s.new_participants, s.threshold, g.next_participant_id);
            assert_ne!(s.old_participants, s.new_participants);
            let members: BTreeSet<_> = s.new_participants.iter().map(|p| &p.account_id).collect();
            assert!(s.finished_votes.iter().all(|v| members.contains(v)));
            let unique: BTreeSet<_> = s.finished_votes.iter().collect();
            assert_eq!(unique.len(), s.finished_votes.len(), "double vote");
            assert!(s.finished_votes.len() < s.new_participants.len());
            let old: BTreeSet<_> = s.old_participants.iter().map(|p| &p.account_id).collect();
            assert!(s.cancel_votes.iter().all(|v| old.contains(v)));
            assert!((s.cancel_votes.len() as u32) < s.threshold);
            assert!(s.new_epoch > s.old_epoch && s.new_epoch < g.next_epoch);
            assert!(s.leaders().contains(&s.key_event.attempt.leader));
        }
    }
}

/// The current key event's attempt, shifted by `delta` (never below 0).
fn attempt(g: &Governance, delta: i8) -> u64 {
    let current = match &g.state {
        ProtocolState::Initializing(s) => s.key_event.attempt.id,
        ProtocolState::Resharing(s) => s.key_event.attempt.id,
        _ => 0,
    };
    current.saturating_add_signed(delta.into())
}

/// Applies `op` at block `*now` (settling first, as every contract call does); returns
/// whether it was accepted. Waiting is always accepted.
fn apply(g: &mut Governance, now: &mut u64, op: &Op) -> bool {
    if let Op::Wait { blocks } = *op {
        *now += blocks;
        g.settle(*now);
        return true;
    }
    g.settle(*now);
    let who = |i: usize| account(&name(i));
    let result = match *op {
        Op::VotePk {
            voter,
            key,
            attempt_delta,
        } => g
            .vote_pk(&who(voter), root_key(key), attempt(g, attempt_delta))
            .map(|_| ()),
        Op::Join { who } => g.join(candidate(&name(who))),
        Op::VoteJoin { voter, candidate } => g
            .vote_join(&who(voter), &who(candidate), *now, RULES)
            .map(|_| ()),
        Op::VoteLeave { voter, leaving } => g
            .vote_leave(&who(voter), &who(leaving), *now, RULES)
            .map(|_| ()),
        Op::VoteReshared {
            voter,
            epoch_delta,
            attempt_delta,
        } => {
            let base = match &g.state {
                ProtocolState::Resharing(s) => s.new_epoch,
                other => other.epoch().unwrap_or(0),
            };
            let epoch = base.saturating_add_signed(epoch_delta.into());
            let attempt = attempt(g, attempt_delta);
            g.vote_reshared(&who(voter), epoch, attempt).map(|_| ())
        }
        Op::VoteCancel { voter } => g.vote_cancel_resharing(&who(voter)).map(|_| ()),
        Op::Wait { .. } => Ok(()),
    };
    result.is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_in_every_reachable_state(
        initial in 1usize..=4,
        threshold_seed in 0u32..4,
        ops in proptest::collection::vec(op(), 0..250),
    ) {
        let threshold = threshold_seed % initial as u32 + 1;
        let mut g = Governance::default();
        let mut now = T0;
        g.init(threshold, (0..initial).map(|i| candidate(&name(i))).collect(), now, RULES)
            .unwrap();
        check(&g);

        let mut key = None;
        let mut epoch = 0u64;
        let mut epochs_run = BTreeSet::from([0u64]);
        let mut ids: BTreeMap<String, u32> = BTreeMap::new();
        let mut last_next_id = g.next_participant_id;
        for op in &ops {
            let mut settled = g.clone();
            settled.settle(now);
            let accepted = apply(&mut g, &mut now, op);
            if !accepted {
                prop_assert_eq!(&g, &settled, "a refused call changed the state");
                continue;
            }
            check(&g);
            if let Some(pk) = g.state.public_key() {
                prop_assert_eq!(*key.get_or_insert(*pk), *pk, "the root key changed");
            }
            let running = g.state.epoch().unwrap();
            prop_assert!(running >= epoch, "the epoch went back");
            if running != epoch {
                prop_assert!(epochs_run.insert(running), "an epoch number was used twice");
            }
            epoch = running;
            prop_assert!(g.next_participant_id >= last_next_id);
            last_next_id = g.next_participant_id;
            // An account keeps its id; a new member gets an id never seen before.
            let members = match &g.state {
                ProtocolState::Running(s) => s.participants.clone(),
                ProtocolState::Resharing(s) => s.new_participants.clone(),
                _ => Vec::new(),
            };
            for p in members {
                let known = ids.get(p.account_id.as_str()).copied();
                match known {
                    Some(id) if id == p.id.0 => {}
                    Some(id) => {
                        // Re-joined after leaving: must be a fresh id.
                        prop_assert!(p.id.0 > id);
                        prop_assert!(ids.values().all(|&other| other != p.id.0));
                        ids.insert(p.account_id.to_string(), p.id.0);
                    }
                    None => {
                        prop_assert!(ids.values().all(|&other| other != p.id.0), "id reused");
                        ids.insert(p.account_id.to_string(), p.id.0);
                    }
                }
            }
        }
    }

    #[test]
    fn outsiders_never_change_anything(
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        // acct0..acct2 are members; every call here comes from acct5 or acct6, who never join.
        let mut g = Governance::default();
        let mut now = T0;
        g.init(2, (0..3).map(|i| candidate(&name(i))).collect(), now, RULES).unwrap();
        for i in 0..3 {
            g.vote_pk(&account(&name(i)), root_key(1), 0).unwrap();
        }
        let start = g.clone();
        for op in ops {
            let op = match op {
                Op::VotePk { key, attempt_delta, .. } => Op::VotePk { voter: 5, key, attempt_delta },
                Op::Join { .. } | Op::Wait { .. } => continue,
                Op::VoteJoin { candidate, .. } => Op::VoteJoin { voter: 6, candidate },
                Op::VoteLeave { leaving, .. } => Op::VoteLeave { voter: 5, leaving },
                Op::VoteReshared { epoch_delta, attempt_delta, .. } => {
                    Op::VoteReshared { voter: 6, epoch_delta, attempt_delta }
                }
                Op::VoteCancel { .. } => Op::VoteCancel { voter: 5 },
            };
            prop_assert!(!apply(&mut g, &mut now, &op), "an outsider's {:?} was accepted", op);
        }
        prop_assert_eq!(g, start);
    }
}
