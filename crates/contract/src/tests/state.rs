use super::{account, candidate, root_key};
use crate::error::Error;
use crate::state::{find, AttemptRules, Governance, ProtocolState};

/// The block the tests' key events begin at, and their attempt rules.
pub const T0: u64 = 1000;
pub const RULES: AttemptRules = AttemptRules {
    attempt_blocks: 10,
    max_attempts: 3,
};

fn initializing(threshold: u32, names: &[&str]) -> Governance {
    let mut g = Governance::default();
    g.init(
        threshold,
        names.iter().map(|n| candidate(n)).collect(),
        T0,
        RULES,
    )
    .unwrap();
    g
}

/// A network Running at epoch 0 with members `names`, all having voted for `root_key(1)`.
fn running(threshold: u32, names: &[&str]) -> Governance {
    let mut g = initializing(threshold, names);
    for name in names {
        g.vote_pk(&account(name), root_key(1), 0).unwrap();
    }
    assert!(matches!(g.state, ProtocolState::Running(_)));
    g
}

fn vote_join(g: &mut Governance, voter: &str, candidate: &str) -> Result<bool, Error> {
    g.vote_join(&account(voter), &account(candidate), T0, RULES)
}

fn vote_leave(g: &mut Governance, voter: &str, leaving: &str) -> Result<bool, Error> {
    g.vote_leave(&account(voter), &account(leaving), T0, RULES)
}

/// A reshare vote in the first attempt.
fn reshared(g: &mut Governance, voter: &str, epoch: u64) -> Result<bool, Error> {
    g.vote_reshared(&account(voter), epoch, 0)
}

fn running_state(g: &Governance) -> &crate::state::RunningState {
    match &g.state {
        ProtocolState::Running(s) => s,
        other => panic!("expected Running, got {other:?}"),
    }
}

fn resharing_state(g: &Governance) -> &crate::state::ResharingState {
    match &g.state {
        ProtocolState::Resharing(s) => s,
        other => panic!("expected Resharing, got {other:?}"),
    }
}

#[test]
fn init_checks_threshold_and_candidates() {
    let mut g = Governance::default();
    assert_eq!(g.init(1, vec![], T0, RULES), Err(Error::NoCandidates));
    assert_eq!(
        g.init(0, vec![candidate("a.near")], T0, RULES),
        Err(Error::BadThreshold {
            threshold: 0,
            members: 1
        })
    );
    assert_eq!(
        g.init(3, vec![candidate("a.near"), candidate("b.near")], T0, RULES),
        Err(Error::BadThreshold {
            threshold: 3,
            members: 2
        })
    );
    assert_eq!(
        g.init(1, vec![candidate("a.near"), candidate("a.near")], T0, RULES),
        Err(Error::DuplicateCandidate(account("a.near")))
    );
    let mut bad_url = candidate("a.near");
    bad_url.url = String::new();
    assert!(matches!(
        g.init(1, vec![bad_url], T0, RULES),
        Err(Error::BadUrl(_))
    ));
    assert_eq!(g.state, ProtocolState::NotInitialized);

    g.init(2, vec![candidate("a.near"), candidate("b.near")], T0, RULES)
        .unwrap();
    let ProtocolState::Initializing(s) = &g.state else {
        panic!("expected Initializing")
    };
    // The initial members know their ids before the key exists: they generate it under them.
    let ids: Vec<_> = s
        .candidates
        .iter()
        .map(|c| (c.account_id.as_str(), c.id.0))
        .collect();
    assert_eq!(ids, vec![("a.near", 0), ("b.near", 1)]);
    assert_eq!(g.next_participant_id, 2);
    assert_eq!(
        g.init(2, vec![candidate("a.near"), candidate("b.near")], T0, RULES),
        Err(Error::AlreadyInitialized)
    );
}

#[test]
fn vote_pk_needs_every_candidate_for_one_key_in_one_attempt() {
    let mut g = initializing(2, &["a.near", "b.near", "c.near"]);
    assert_eq!(
        g.vote_pk(&account("x.near"), root_key(1), 0),
        Err(Error::NotAParticipant(account("x.near")))
    );
    assert_eq!(g.vote_pk(&account("a.near"), root_key(1), 0), Ok(false));
    // Once each, even for another key.
    assert_eq!(
        g.vote_pk(&account("a.near"), root_key(1), 0),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    assert_eq!(
        g.vote_pk(&account("a.near"), root_key(2), 0),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    // Another attempt's key is not this attempt's.
    assert_eq!(
        g.vote_pk(&account("b.near"), root_key(1), 1),
        Err(Error::WrongAttempt {
            given: 1,
            current: 0
        })
    );
    // A different key does not count towards the first; a threshold of votes is not enough.
    assert_eq!(g.vote_pk(&account("b.near"), root_key(2), 0), Ok(false));
    assert_eq!(g.vote_pk(&account("c.near"), root_key(1), 0), Ok(false));
    assert!(matches!(g.state, ProtocolState::Initializing(_)));

    // The attempt ends at its deadline: its votes go, the next leader starts attempt 1.
    g.settle(T0 + RULES.attempt_blocks);
    let ProtocolState::Initializing(s) = &g.state else {
        panic!("expected Initializing")
    };
    assert!(s.pk_votes.is_empty());
    assert_eq!(s.key_event.attempt.id, 1);
    assert_eq!(s.key_event.attempt.leader.0, 1);
    assert_eq!(s.key_event.attempt.deadline, T0 + 2 * RULES.attempt_blocks);
    assert_eq!(
        g.vote_pk(&account("a.near"), root_key(1), 0),
        Err(Error::WrongAttempt {
            given: 0,
            current: 1
        })
    );
    for name in ["a.near", "b.near"] {
        assert_eq!(g.vote_pk(&account(name), root_key(1), 1), Ok(false));
    }
    assert_eq!(g.vote_pk(&account("c.near"), root_key(1), 1), Ok(true));

    let s = running_state(&g);
    assert_eq!(s.epoch, 0);
    assert_eq!(s.public_key, root_key(1));
    assert_eq!(s.threshold, 2);
    let ids: Vec<_> = s
        .participants
        .iter()
        .map(|p| (p.account_id.to_string(), p.id.0))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("a.near".into(), 0),
            ("b.near".into(), 1),
            ("c.near".into(), 2)
        ]
    );
    assert_eq!(g.next_participant_id, 3);

    // Late votes: the same key is accepted and changes nothing, another key is refused.
    let before = g.clone();
    assert_eq!(g.vote_pk(&account("b.near"), root_key(1), 1), Ok(false));
    assert_eq!(g, before);
    assert_eq!(
        g.vote_pk(&account("b.near"), root_key(2), 1),
        Err(Error::PublicKeyMismatch)
    );
    assert_eq!(
        g.vote_pk(&account("x.near"), root_key(1), 1),
        Err(Error::NotAParticipant(account("x.near")))
    );
}

#[test]
fn methods_refuse_the_wrong_state() {
    let mut g = Governance::default();
    assert!(matches!(
        g.vote_pk(&account("a.near"), root_key(1), 0),
        Err(Error::WrongState {
            method: "vote_pk",
            ..
        })
    ));
    assert!(matches!(
        g.join(candidate("a.near")),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        vote_join(&mut g, "a.near", "b.near"),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        vote_leave(&mut g, "a.near", "b.near"),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        reshared(&mut g, "a.near", 1),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        g.vote_cancel_resharing(&account("a.near")),
        Err(Error::WrongState { .. })
    ));
    let mut g = initializing(1, &["a.near"]);
    assert!(matches!(
        g.join(candidate("b.near")),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        vote_join(&mut g, "a.near", "b.near"),
        Err(Error::WrongState { .. })
    ));
    let msg = vote_join(&mut g, "a.near", "b.near")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "`vote_join` is only allowed while the contract is Running; it is Initializing"
    );
}

#[test]
fn join_and_vote_join_reshare_into_a_new_epoch() {
    let mut g = running(2, &["a.near", "b.near", "c.near"]);
    // Voting for an account that has not joined.
    assert_eq!(
        vote_join(&mut g, "a.near", "d.near"),
        Err(Error::NotACandidate(account("d.near")))
    );
    g.join(candidate("d.near")).unwrap();
    // Re-joining updates the registration instead of adding a second one.
    let mut moved = candidate("d.near");
    moved.url = "https://d-moved:3000".into();
    g.join(moved).unwrap();
    assert_eq!(running_state(&g).candidates.len(), 1);
    assert_eq!(running_state(&g).candidates[0].url, "https://d-moved:3000");
    assert_eq!(
        g.join(candidate("a.near")),
        Err(Error::AlreadyParticipant(account("a.near")))
    );
    // Outsiders and candidates cannot vote.
    assert_eq!(
        vote_join(&mut g, "d.near", "d.near"),
        Err(Error::NotAParticipant(account("d.near")))
    );
    assert_eq!(vote_join(&mut g, "a.near", "d.near"), Ok(false));
    assert_eq!(
        vote_join(&mut g, "a.near", "d.near"),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    assert_eq!(
        vote_join(&mut g, "a.near", "b.near"),
        Err(Error::AlreadyParticipant(account("b.near")))
    );
    assert_eq!(vote_join(&mut g, "c.near", "d.near"), Ok(true));

    let s = resharing_state(&g);
    assert_eq!(s.old_epoch, 0);
    assert_eq!(s.old_participants.len(), 3);
    assert_eq!(s.new_participants.len(), 4);
    let d = find(&s.new_participants, &account("d.near")).unwrap();
    assert_eq!(d.id.0, 3);
    assert_eq!(d.url, "https://d-moved:3000");
    assert!(s.candidates.is_empty());
    assert_eq!(s.new_epoch, 1);
    assert_eq!(s.key_event.started_at, T0);
    // Members of both sets lead in turn, starting at one the epoch number picks.
    assert_eq!(s.leaders().len(), 3);
    assert_eq!(s.key_event.attempt.leader, s.leaders()[1]);

    // Votes during the reshare.
    assert!(matches!(
        vote_join(&mut g, "a.near", "d.near"),
        Err(Error::WrongState { .. })
    ));
    assert_eq!(
        reshared(&mut g, "x.near", 1),
        Err(Error::NotAParticipant(account("x.near")))
    );
    // Stale and future epochs.
    let stale = reshared(&mut g, "a.near", 0).unwrap_err();
    assert_eq!(
        stale,
        Error::WrongEpoch {
            given: 0,
            expected: 1
        }
    );
    assert!(stale.to_string().starts_with("stale epoch 0"));
    assert!(reshared(&mut g, "a.near", 2).is_err());
    assert_eq!(reshared(&mut g, "d.near", 1), Ok(false));
    assert_eq!(
        reshared(&mut g, "d.near", 1),
        Err(Error::AlreadyVoted(account("d.near")))
    );
    // A candidate may register while the reshare runs and stays one after it.
    g.join(candidate("e.near")).unwrap();
    assert_eq!(
        g.join(candidate("d.near")),
        Err(Error::AlreadyParticipant(account("d.near")))
    );
    // Every member of the new set must report its share, not just a threshold.
    assert_eq!(reshared(&mut g, "a.near", 1), Ok(false));
    assert_eq!(reshared(&mut g, "c.near", 1), Ok(false));
    assert!(matches!(g.state, ProtocolState::Resharing(_)));
    assert_eq!(reshared(&mut g, "b.near", 1), Ok(true));

    let s = running_state(&g);
    assert_eq!(s.epoch, 1);
    assert_eq!(s.participants.len(), 4);
    assert_eq!(s.public_key, root_key(1));
    assert_eq!(s.candidates.len(), 1);
    assert!(s.join_votes.is_empty() && s.leave_votes.is_empty());
    // A late vote for the finished reshare is fine; an older epoch is stale.
    assert_eq!(reshared(&mut g, "c.near", 1), Ok(false));
    assert_eq!(
        reshared(&mut g, "c.near", 0),
        Err(Error::WrongEpoch {
            given: 0,
            expected: 1
        })
    );
    assert!(reshared(&mut g, "c.near", 2).is_err());
}

#[test]
fn vote_leave_never_goes_below_threshold() {
    let mut g = running(2, &["a.near", "b.near", "c.near"]);
    assert_eq!(
        vote_leave(&mut g, "x.near", "a.near"),
        Err(Error::NotAParticipant(account("x.near")))
    );
    assert_eq!(
        vote_leave(&mut g, "a.near", "x.near"),
        Err(Error::NotAParticipant(account("x.near")))
    );
    assert_eq!(vote_leave(&mut g, "a.near", "c.near"), Ok(false));
    assert_eq!(
        vote_leave(&mut g, "a.near", "c.near"),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    // The leaving participant may vote too.
    assert_eq!(vote_leave(&mut g, "c.near", "c.near"), Ok(true));
    let s = resharing_state(&g);
    assert_eq!(s.new_participants.len(), 2);
    assert!(find(&s.new_participants, &account("c.near")).is_none());
    // Only the new set finishes the reshare.
    assert_eq!(
        reshared(&mut g, "c.near", 1),
        Err(Error::NotAParticipant(account("c.near")))
    );
    reshared(&mut g, "a.near", 1).unwrap();
    assert_eq!(reshared(&mut g, "b.near", 1), Ok(true));
    let s = running_state(&g);
    assert_eq!(s.participants.len(), 2);
    // Ids stay with their accounts.
    assert_eq!(find(&s.participants, &account("b.near")).unwrap().id.0, 1);

    // Two participants, threshold two: nobody may leave.
    let err = vote_leave(&mut g, "a.near", "b.near").unwrap_err();
    assert_eq!(
        err,
        Error::BelowThreshold {
            participants: 2,
            threshold: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "refused: removing a participant would leave 1 participants, below the threshold of 2"
    );
}

#[test]
fn participant_ids_are_never_reused() {
    let mut g = running(1, &["a.near", "b.near"]);
    vote_leave(&mut g, "a.near", "b.near").unwrap();
    assert_eq!(reshared(&mut g, "a.near", 1), Ok(true));
    g.join(candidate("b.near")).unwrap();
    vote_join(&mut g, "a.near", "b.near").unwrap();
    let s = resharing_state(&g);
    assert_eq!(
        find(&s.new_participants, &account("b.near")).unwrap().id.0,
        2
    );
}

#[test]
fn a_reshare_that_runs_out_of_attempts_is_cancelled_by_the_contract() {
    let mut g = running(2, &["a.near", "b.near", "c.near"]);
    g.join(candidate("d.near")).unwrap();
    g.join(candidate("e.near")).unwrap();
    vote_join(&mut g, "a.near", "d.near").unwrap();
    vote_join(&mut g, "b.near", "d.near").unwrap();
    let before = resharing_state(&g).clone();
    assert_eq!(before.new_epoch, 1);

    // Each attempt's votes count only in that attempt; the leader rotates.
    reshared(&mut g, "a.near", 1).unwrap();
    g.settle(T0 + RULES.attempt_blocks - 1);
    assert_eq!(resharing_state(&g).finished_votes.len(), 1);
    g.settle(T0 + RULES.attempt_blocks);
    let s = resharing_state(&g);
    assert!(s.finished_votes.is_empty());
    assert_eq!(s.key_event.attempt.id, 1);
    assert_ne!(s.key_event.attempt.leader, before.key_event.attempt.leader);
    assert!(s.leaders().contains(&s.key_event.attempt.leader));
    assert_eq!(
        reshared(&mut g, "a.near", 1),
        Err(Error::WrongAttempt {
            given: 0,
            current: 1
        })
    );
    assert_eq!(g.vote_reshared(&account("a.near"), 1, 1), Ok(false));

    // Out of attempts: Running on the old set, old epoch, same key; d is a candidate again.
    g.settle(T0 + u64::from(RULES.max_attempts) * RULES.attempt_blocks);
    let s = running_state(&g);
    assert_eq!(s.epoch, 0);
    assert_eq!(s.participants, before.old_participants);
    assert_eq!(s.threshold, before.threshold);
    assert_eq!(s.public_key, before.public_key);
    let candidates: Vec<_> = s.candidates.iter().map(|c| c.account_id.as_str()).collect();
    assert_eq!(candidates, vec!["e.near", "d.near"]);
    assert!(s.join_votes.is_empty());
    // A vote for the cancelled epoch is refused; settling again changes nothing.
    assert!(g.vote_reshared(&account("a.near"), 1, 2).is_err());
    let settled = g.clone();
    g.settle(T0 + 10_000);
    assert_eq!(g, settled);

    // Voted in again: a fresh id and a fresh epoch number, never the cancelled ones.
    vote_join(&mut g, "a.near", "d.near").unwrap();
    vote_join(&mut g, "b.near", "d.near").unwrap();
    let s = resharing_state(&g);
    assert_eq!(s.new_epoch, 2);
    assert_eq!(
        find(&s.new_participants, &account("d.near")).unwrap().id.0,
        4
    );
}

#[test]
fn a_threshold_of_old_participants_cancels_a_reshare() {
    let mut g = running(2, &["a.near", "b.near", "c.near"]);
    vote_leave(&mut g, "a.near", "c.near").unwrap();
    vote_leave(&mut g, "b.near", "c.near").unwrap();
    let before = resharing_state(&g).clone();
    assert_eq!(
        g.vote_cancel_resharing(&account("x.near")),
        Err(Error::NotAParticipant(account("x.near")))
    );
    // The leaving participant is an old one: its vote counts.
    assert_eq!(g.vote_cancel_resharing(&account("c.near")), Ok(false));
    assert_eq!(
        g.vote_cancel_resharing(&account("c.near")),
        Err(Error::AlreadyVoted(account("c.near")))
    );
    assert_eq!(g.vote_cancel_resharing(&account("a.near")), Ok(true));
    let s = running_state(&g);
    assert_eq!(s.epoch, before.old_epoch);
    assert_eq!(s.participants, before.old_participants);
    assert!(s.candidates.is_empty(), "nobody was being admitted");
    assert!(s.leave_votes.is_empty());
}

#[test]
fn a_leaving_member_that_registers_again_is_a_member_after_a_cancel() {
    let mut g = running(2, &["a.near", "b.near", "c.near"]);
    vote_leave(&mut g, "a.near", "c.near").unwrap();
    vote_leave(&mut g, "b.near", "c.near").unwrap();
    // While it is being removed, c registers to come back later.
    g.join(candidate("c.near")).unwrap();
    g.vote_cancel_resharing(&account("a.near")).unwrap();
    assert_eq!(g.vote_cancel_resharing(&account("b.near")), Ok(true));
    let s = running_state(&g);
    assert!(find(&s.participants, &account("c.near")).is_some());
    assert!(s.candidates.is_empty(), "a member is not also a candidate");
}

#[test]
fn state_json_shape() {
    let g = running(1, &["a.near"]);
    let json = serde_json::to_value(&g.state).unwrap();
    let running = &json["Running"];
    assert_eq!(running["epoch"], 0);
    assert_eq!(running["threshold"], 1);
    assert_eq!(running["public_key"], root_key(1).to_string());
    let p = &running["participants"][0];
    assert_eq!(p["account_id"], "a.near");
    assert_eq!(p["id"], 0);
    assert_eq!(p["url"], "https://a.near:3000");
    assert!(p["tls_public_key"]
        .as_str()
        .unwrap()
        .starts_with("ed25519:"));
    assert!(p["sign_public_key"]
        .as_str()
        .unwrap()
        .starts_with("ed25519:"));
    assert_eq!(
        serde_json::to_value(&ProtocolState::NotInitialized).unwrap(),
        "NotInitialized"
    );
    // And back.
    let back: ProtocolState = serde_json::from_value(json).unwrap();
    assert_eq!(back, g.state);
}

#[test]
fn borsh_round_trip() {
    use near_sdk::borsh;
    let mut g = running(2, &["a.near", "b.near", "c.near"]);
    g.join(candidate("d.near")).unwrap();
    vote_join(&mut g, "a.near", "d.near").unwrap();
    let bytes = borsh::to_vec(&g).unwrap();
    let back: Governance = borsh::from_slice(&bytes).unwrap();
    assert_eq!(back, g);
    vote_join(&mut g, "b.near", "d.near").unwrap();
    let bytes = borsh::to_vec(&g).unwrap();
    assert_eq!(borsh::from_slice::<Governance>(&bytes).unwrap(), g);
}

#[test]
fn candidates_are_bounded() {
    let mut g = running(1, &["a.near"]);
    for i in 0..crate::state::MAX_CANDIDATES {
        g.join(candidate(&format!("c{i}.near"))).unwrap();
    }
    assert_eq!(
        g.join(candidate("late.near")),
        Err(Error::TooManyCandidates { max: 32 })
    );
    // Updating a registration is still possible.
    g.join(candidate("c0.near")).unwrap();
    // Voting one in frees a place.
    vote_join(&mut g, "a.near", "c0.near").unwrap();
    reshared(&mut g, "c0.near", 1).unwrap();
    reshared(&mut g, "a.near", 1).unwrap();
    g.join(candidate("late.near")).unwrap();
}
