use super::{account, candidate, root_key};
use crate::error::Error;
use crate::state::{find, Governance, ProtocolState};

fn initializing(threshold: u32, names: &[&str]) -> Governance {
    let mut g = Governance::default();
    g.init(threshold, names.iter().map(|n| candidate(n)).collect())
        .unwrap();
    g
}

/// A network Running at epoch 0 with members `names`, all having voted for `root_key(1)`.
fn running(threshold: u32, names: &[&str]) -> Governance {
    let mut g = initializing(threshold, names);
    for name in &names[..threshold as usize] {
        g.vote_pk(&account(name), root_key(1)).unwrap();
    }
    assert!(matches!(g.state, ProtocolState::Running(_)));
    g
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
    assert_eq!(g.init(1, vec![]), Err(Error::NoCandidates));
    assert_eq!(
        g.init(0, vec![candidate("a.near")]),
        Err(Error::BadThreshold {
            threshold: 0,
            members: 1
        })
    );
    assert_eq!(
        g.init(3, vec![candidate("a.near"), candidate("b.near")]),
        Err(Error::BadThreshold {
            threshold: 3,
            members: 2
        })
    );
    assert_eq!(
        g.init(1, vec![candidate("a.near"), candidate("a.near")]),
        Err(Error::DuplicateCandidate(account("a.near")))
    );
    let mut bad_url = candidate("a.near");
    bad_url.url = String::new();
    assert!(matches!(g.init(1, vec![bad_url]), Err(Error::BadUrl(_))));
    assert_eq!(g.state, ProtocolState::NotInitialized);

    g.init(2, vec![candidate("a.near"), candidate("b.near")])
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
        g.init(2, vec![candidate("a.near"), candidate("b.near")]),
        Err(Error::AlreadyInitialized)
    );
}

#[test]
fn vote_pk_needs_threshold_equal_votes_from_candidates() {
    let mut g = initializing(2, &["a.near", "b.near", "c.near"]);
    assert_eq!(
        g.vote_pk(&account("x.near"), root_key(1)),
        Err(Error::NotAParticipant(account("x.near")))
    );
    assert_eq!(g.vote_pk(&account("a.near"), root_key(1)), Ok(false));
    // Once each, even for another key.
    assert_eq!(
        g.vote_pk(&account("a.near"), root_key(1)),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    assert_eq!(
        g.vote_pk(&account("a.near"), root_key(2)),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    // A different key does not count towards the first.
    assert_eq!(g.vote_pk(&account("b.near"), root_key(2)), Ok(false));
    assert!(matches!(g.state, ProtocolState::Initializing(_)));
    assert_eq!(g.vote_pk(&account("c.near"), root_key(1)), Ok(true));

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
    assert_eq!(g.vote_pk(&account("b.near"), root_key(1)), Ok(false));
    assert_eq!(g, before);
    assert_eq!(
        g.vote_pk(&account("b.near"), root_key(2)),
        Err(Error::PublicKeyMismatch)
    );
    assert_eq!(
        g.vote_pk(&account("x.near"), root_key(1)),
        Err(Error::NotAParticipant(account("x.near")))
    );
}

#[test]
fn methods_refuse_the_wrong_state() {
    let mut g = Governance::default();
    assert!(matches!(
        g.vote_pk(&account("a.near"), root_key(1)),
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
        g.vote_join(&account("a.near"), &account("b.near")),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        g.vote_leave(&account("a.near"), &account("b.near")),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        g.vote_reshared(&account("a.near"), 1),
        Err(Error::WrongState { .. })
    ));
    let mut g = initializing(1, &["a.near"]);
    assert!(matches!(
        g.join(candidate("b.near")),
        Err(Error::WrongState { .. })
    ));
    assert!(matches!(
        g.vote_join(&account("a.near"), &account("b.near")),
        Err(Error::WrongState { .. })
    ));
    let msg = g
        .vote_join(&account("a.near"), &account("b.near"))
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
        g.vote_join(&account("a.near"), &account("d.near")),
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
        g.vote_join(&account("d.near"), &account("d.near")),
        Err(Error::NotAParticipant(account("d.near")))
    );
    assert_eq!(
        g.vote_join(&account("a.near"), &account("d.near")),
        Ok(false)
    );
    assert_eq!(
        g.vote_join(&account("a.near"), &account("d.near")),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    assert_eq!(
        g.vote_join(&account("a.near"), &account("b.near")),
        Err(Error::AlreadyParticipant(account("b.near")))
    );
    assert_eq!(
        g.vote_join(&account("c.near"), &account("d.near")),
        Ok(true)
    );

    let s = resharing_state(&g);
    assert_eq!(s.old_epoch, 0);
    assert_eq!(s.old_participants.len(), 3);
    assert_eq!(s.new_participants.len(), 4);
    let d = find(&s.new_participants, &account("d.near")).unwrap();
    assert_eq!(d.id.0, 3);
    assert_eq!(d.url, "https://d-moved:3000");
    assert!(s.candidates.is_empty());

    // Votes during the reshare.
    assert!(matches!(
        g.vote_join(&account("a.near"), &account("d.near")),
        Err(Error::WrongState { .. })
    ));
    assert_eq!(
        g.vote_reshared(&account("x.near"), 1),
        Err(Error::NotAParticipant(account("x.near")))
    );
    // Stale and future epochs.
    let stale = g.vote_reshared(&account("a.near"), 0).unwrap_err();
    assert_eq!(
        stale,
        Error::WrongEpoch {
            given: 0,
            expected: 1
        }
    );
    assert!(stale.to_string().starts_with("stale epoch 0"));
    assert!(g.vote_reshared(&account("a.near"), 2).is_err());
    assert_eq!(g.vote_reshared(&account("d.near"), 1), Ok(false));
    assert_eq!(
        g.vote_reshared(&account("d.near"), 1),
        Err(Error::AlreadyVoted(account("d.near")))
    );
    // A candidate may register while the reshare runs and stays one after it.
    g.join(candidate("e.near")).unwrap();
    assert_eq!(
        g.join(candidate("d.near")),
        Err(Error::AlreadyParticipant(account("d.near")))
    );
    assert_eq!(g.vote_reshared(&account("b.near"), 1), Ok(true));

    let s = running_state(&g);
    assert_eq!(s.epoch, 1);
    assert_eq!(s.participants.len(), 4);
    assert_eq!(s.public_key, root_key(1));
    assert_eq!(s.candidates.len(), 1);
    assert!(s.join_votes.is_empty() && s.leave_votes.is_empty());
    // A late vote for the finished reshare is fine; an older epoch is stale.
    assert_eq!(g.vote_reshared(&account("c.near"), 1), Ok(false));
    assert_eq!(
        g.vote_reshared(&account("c.near"), 0),
        Err(Error::WrongEpoch {
            given: 0,
            expected: 1
        })
    );
    assert!(g.vote_reshared(&account("c.near"), 2).is_err());
}

#[test]
fn vote_leave_never_goes_below_threshold() {
    let mut g = running(2, &["a.near", "b.near", "c.near"]);
    assert_eq!(
        g.vote_leave(&account("x.near"), &account("a.near")),
        Err(Error::NotAParticipant(account("x.near")))
    );
    assert_eq!(
        g.vote_leave(&account("a.near"), &account("x.near")),
        Err(Error::NotAParticipant(account("x.near")))
    );
    assert_eq!(
        g.vote_leave(&account("a.near"), &account("c.near")),
        Ok(false)
    );
    assert_eq!(
        g.vote_leave(&account("a.near"), &account("c.near")),
        Err(Error::AlreadyVoted(account("a.near")))
    );
    // The leaving participant may vote too.
    assert_eq!(
        g.vote_leave(&account("c.near"), &account("c.near")),
        Ok(true)
    );
    let s = resharing_state(&g);
    assert_eq!(s.new_participants.len(), 2);
    assert!(find(&s.new_participants, &account("c.near")).is_none());
    // Only the new set finishes the reshare.
    assert_eq!(
        g.vote_reshared(&account("c.near"), 1),
        Err(Error::NotAParticipant(account("c.near")))
    );
    g.vote_reshared(&account("a.near"), 1).unwrap();
    assert_eq!(g.vote_reshared(&account("b.near"), 1), Ok(true));
    let s = running_state(&g);
    assert_eq!(s.participants.len(), 2);
    // Ids stay with their accounts.
    assert_eq!(find(&s.participants, &account("b.near")).unwrap().id.0, 1);

    // Two participants, threshold two: nobody may leave.
    let err = g
        .vote_leave(&account("a.near"), &account("b.near"))
        .unwrap_err();
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
    g.vote_leave(&account("a.near"), &account("b.near"))
        .unwrap();
    g.vote_reshared(&account("a.near"), 1).unwrap();
    g.join(candidate("b.near")).unwrap();
    g.vote_join(&account("a.near"), &account("b.near")).unwrap();
    let s = resharing_state(&g);
    assert_eq!(
        find(&s.new_participants, &account("b.near")).unwrap().id.0,
        2
    );
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
    g.vote_join(&account("a.near"), &account("d.near")).unwrap();
    let bytes = borsh::to_vec(&g).unwrap();
    let back: Governance = borsh::from_slice(&bytes).unwrap();
    assert_eq!(back, g);
    g.vote_join(&account("b.near"), &account("d.near")).unwrap();
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
    g.vote_join(&account("a.near"), &account("c0.near"))
        .unwrap();
    g.vote_reshared(&account("c0.near"), 1).unwrap();
    g.join(candidate("late.near")).unwrap();
}
