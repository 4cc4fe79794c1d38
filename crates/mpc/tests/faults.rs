//! Hostile and unreliable networks: every fault ends in a clear error that names the peer
//! (or a timeout), never a panic, and a merely slow or shuffled network changes nothing.

mod common;

use std::time::{Duration, Instant};

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::simulation::{Fate, Simulation};
use chainsig_mpc::{
    keygen, sign, BoxedProtocol, KeyShare, ParticipantId, Protocol, ProtocolError, Step,
};
use common::*;
use proptest::prelude::*;

fn keygen_parties(n: u32, threshold: usize) -> Vec<(ParticipantId, BoxedProtocol<KeyShare>)> {
    let participants = ids(0..n);
    let limits = key_limits(participants.len()).with_timeout(Duration::from_secs(30));
    participants
        .iter()
        .map(|&p| (p, keygen(&participants, p, threshold, limits).unwrap()))
        .collect()
}

/// Every failure that blames a peer outright blames `culprit`; the others are timeouts or
/// failed cryptographic checks (which cannot always tell who diverged).
fn assert_blames(
    failures: &std::collections::BTreeMap<ParticipantId, ProtocolError>,
    culprit: ParticipantId,
) {
    for (party, error) in failures {
        match error {
            ProtocolError::Timeout { .. } | ProtocolError::Failed { .. } => {}
            other => assert_eq!(other.peer(), Some(culprit), "{party} failed with `{other}`"),
        }
    }
}

#[test]
fn a_truncated_message_is_malformed_and_names_the_sender() {
    let report = Simulation::new(keygen_parties(3, 2), 1)
        .with_faults(Box::new(|env, _| {
            if env.from == ParticipantId(2) {
                Fate::Truncate(5)
            } else {
                Fate::Deliver
            }
        }))
        .run();
    assert!(!report.failures.is_empty());
    for error in report.failures.values() {
        assert!(
            matches!(
                error,
                ProtocolError::Malformed {
                    peer: ParticipantId(2),
                    ..
                } | ProtocolError::Timeout { .. }
            ),
            "{error}"
        );
    }
}

#[test]
fn a_duplicated_message_is_refused_and_names_the_sender() {
    let report = Simulation::new(keygen_parties(3, 2), 2)
        .with_faults(Box::new(|env, _| {
            if env.from == ParticipantId(1) {
                Fate::Duplicate
            } else {
                Fate::Deliver
            }
        }))
        .run();
    assert!(report.failures.values().any(|e| *e
        == ProtocolError::Duplicate {
            peer: ParticipantId(1)
        }));
    assert_blames(&report.failures, ParticipantId(1));
}

#[test]
fn corrupted_messages_fail_with_the_sender_named_or_time_out() {
    for seed in 0..8 {
        let report = Simulation::new(keygen_parties(3, 2), seed)
            .with_faults(Box::new(|env, rng| {
                if env.from == ParticipantId(0) && rng.next_u32() % 2 == 0 {
                    // Past the 28-byte header, so the message still reaches its waitpoint.
                    Fate::Corrupt {
                        index: 28 + (rng.next_u32() % 64) as usize,
                        mask: 0x41,
                    }
                } else {
                    Fate::Deliver
                }
            }))
            .run();
        assert_blames(&report.failures, ParticipantId(0));
        assert_eq!(
            report.outputs.len() + report.failures.len(),
            3,
            "every party settles"
        );
    }
}

use rand_core::RngCore;

#[test]
fn a_silent_peer_makes_the_others_time_out_naming_it() {
    let report = Simulation::new(keygen_parties(3, 2), 3)
        .with_faults(Box::new(|env, _| {
            if env.from == ParticipantId(2) {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        }))
        .run();
    for party in [ParticipantId(0), ParticipantId(1)] {
        match &report.failures[&party] {
            ProtocolError::Timeout { after, waiting_on } => {
                assert!(*after >= Duration::from_secs(30));
                assert_eq!(waiting_on, &vec![ParticipantId(2)]);
            }
            other => panic!("{party}: expected a timeout, got {other}"),
        }
    }
}

#[test]
fn delays_and_reordering_change_nothing() {
    for seed in 0..4 {
        let report = Simulation::new(keygen_parties(5, 3), seed)
            .with_reordering()
            .with_faults(Box::new(|_, rng| {
                if rng.next_u32() % 3 == 0 {
                    Fate::Delay(rng.next_u32() % 20)
                } else {
                    Fate::Deliver
                }
            }))
            .run();
        let keys = report.into_result().expect("honest but slow network");
        let root = keys[&ParticipantId(0)].public_key;
        assert!(keys.values().all(|k| k.public_key == root));
    }
}

#[test]
fn direct_abuse_is_refused_with_the_peer_named() {
    let participants = ids(0..3);
    let now = Instant::now();
    let fresh = || keygen(&participants, ParticipantId(0), 2, key_limits(3)).unwrap();

    let mut protocol = fresh();
    assert_eq!(
        protocol.receive(ParticipantId(99), &[0; 40]).unwrap_err(),
        ProtocolError::UnknownPeer(ParticipantId(99))
    );
    // A failed instance stays failed.
    assert_eq!(
        protocol.poll(now).unwrap_err(),
        ProtocolError::UnknownPeer(ParticipantId(99))
    );

    let mut protocol = fresh();
    let error = protocol
        .receive(ParticipantId(1), &vec![7; 10 << 20])
        .unwrap_err();
    assert!(
        matches!(
            error,
            ProtocolError::Oversized {
                peer: ParticipantId(1),
                ..
            }
        ),
        "{error}"
    );

    let mut protocol = fresh();
    let error = protocol.receive(ParticipantId(0), &[0; 40]).unwrap_err();
    assert_eq!(
        error,
        ProtocolError::UnknownPeer(ParticipantId(0)),
        "messages from ourselves are refused"
    );

    let mut protocol = fresh();
    let limit = key_limits(3);
    let chunk = vec![1u8; limit.max_message_bytes];
    let mut last = Ok(());
    for i in 0..=(limit.max_bytes_per_peer / chunk.len()) {
        let mut message = chunk.clone();
        message[..8].copy_from_slice(&(i as u64).to_le_bytes());
        last = protocol.receive(ParticipantId(2), &message);
        if last.is_err() {
            break;
        }
    }
    assert!(
        matches!(
            last,
            Err(ProtocolError::Flood {
                peer: ParticipantId(2),
                ..
            })
        ),
        "{last:?}"
    );
}

#[test]
fn bad_signature_shares_are_caught_by_the_leader() {
    let participants = ids(0..3);
    let keys = run_keygen(&participants, 2);
    let args = sign_args("erin.near", "p", [4; 32]);
    let leader = ParticipantId(0);

    // A share of the wrong length names its sender.
    let presignatures = run_presign(&keys, &participants);
    let parties: Vec<_> = presignatures
        .into_iter()
        .map(|(p, pre)| {
            (
                p,
                sign(&keys[&p], pre, leader, &args, sign_limits()).unwrap(),
            )
        })
        .collect();
    let report = Simulation::new(parties, 4)
        .with_faults(Box::new(|env, _| {
            if env.from == ParticipantId(2) {
                Fate::Truncate(31)
            } else {
                Fate::Deliver
            }
        }))
        .run();
    assert!(matches!(
        report.failures.get(&leader),
        Some(ProtocolError::Malformed {
            peer: ParticipantId(2),
            ..
        })
    ));

    // A share with a flipped bit gives a signature that does not verify: refused, not emitted.
    let presignatures = run_presign(&keys, &participants);
    let parties: Vec<_> = presignatures
        .into_iter()
        .map(|(p, pre)| {
            (
                p,
                sign(&keys[&p], pre, leader, &args, sign_limits()).unwrap(),
            )
        })
        .collect();
    let report = Simulation::new(parties, 5)
        .with_faults(Box::new(|env, _| {
            if env.from == ParticipantId(1) {
                Fate::Corrupt { index: 31, mask: 1 }
            } else {
                Fate::Deliver
            }
        }))
        .run();
    let error = &report.failures[&leader];
    assert!(
        error.to_string().contains("combined signature rejected"),
        "{error}"
    );
    assert!(!report.outputs.contains_key(&leader));
}

#[test]
fn followers_refuse_messages_and_a_missing_share_times_out() {
    let participants = ids(0..3);
    let keys = run_keygen(&participants, 2);
    let args = sign_args("frank.near", "p", [5; 32]);
    let mut presignatures = run_presign(&keys, &participants);
    let pre = presignatures.remove(&ParticipantId(1)).unwrap();
    let mut follower = sign(
        &keys[&ParticipantId(1)],
        pre,
        ParticipantId(0),
        &args,
        sign_limits(),
    )
    .unwrap();
    let error = follower.receive(ParticipantId(2), &[0; 32]).unwrap_err();
    assert!(matches!(
        error,
        ProtocolError::Malformed {
            peer: ParticipantId(2),
            ..
        }
    ));

    let pre = presignatures.remove(&ParticipantId(0)).unwrap();
    let mut leader = sign(
        &keys[&ParticipantId(0)],
        pre,
        ParticipantId(0),
        &args,
        sign_limits(),
    )
    .unwrap();
    let start = Instant::now();
    assert!(matches!(leader.poll(start).unwrap(), Step::Wait));
    match leader.poll(start + Duration::from_secs(11)).unwrap_err() {
        ProtocolError::Timeout { waiting_on, .. } => {
            assert_eq!(waiting_on, vec![ParticipantId(1), ParticipantId(2)])
        }
        other => panic!("expected a timeout, got {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever a faulty network does to keygen messages, every party ends with a result or
    /// an error; nothing panics, and an error that blames a peer outright blames the faulty one.
    #[test]
    fn random_faults_never_panic(seed in any::<u64>(), faulty in 0u32..3, kind in 0u8..5) {
        let culprit = ParticipantId(faulty);
        let report = Simulation::new(keygen_parties(3, 2), seed)
            .with_reordering()
            .with_faults(Box::new(move |env, rng| {
                if env.from != culprit || rng.next_u32() % 2 == 0 {
                    return Fate::Deliver;
                }
                let at = (rng.next_u32() % 256) as usize;
                match kind {
                    0 => Fate::Truncate(at),
                    1 => Fate::Corrupt { index: at, mask: rng.next_u32() as u8 },
                    2 => Fate::Duplicate,
                    3 => Fate::Drop,
                    _ => Fate::Delay(rng.next_u32() % 10),
                }
            }))
            .run();
        prop_assert_eq!(report.outputs.len() + report.failures.len(), 3);
        for (party, error) in &report.failures {
            if let Some(peer) = error.peer() {
                prop_assert_eq!(peer, culprit, "{} blamed the wrong peer: {}", party, error);
            }
        }
    }

    /// Arbitrary bytes straight into a signing leader: an error, never a panic.
    #[test]
    fn garbage_into_every_protocol_is_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..200), from in 0u32..5) {
        let participants = ids(0..3);
        let mut protocol = keygen(&participants, ParticipantId(0), 2, key_limits(3)).unwrap();
        let _ = protocol.receive(ParticipantId(from), &bytes);
        let _ = protocol.poll(Instant::now());
        let mut triple = chainsig_mpc::generate_triples(&participants, ParticipantId(0), 2, 2, chainsig_mpc::triples::triple_limits(3)).unwrap();
        let _ = triple.poll(Instant::now());
        let _ = triple.receive(ParticipantId(from), &bytes);
        let _ = triple.poll(Instant::now());
    }
}
