//! The default limits leave honest traffic plenty of room: at least twice what an honest
//! peer sends, so that only a faulty peer ever hits them.

mod common;

use chainsig_mpc::keygen::key_limits;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use chainsig_mpc::simulation::{Fate, Simulation};
use chainsig_mpc::triples::triple_limits;
use chainsig_mpc::{generate_triple, keygen, Limits, ParticipantId};
use common::ids;

fn assert_headroom(what: &str, limits: Limits, largest: usize, per_peer: u64) {
    println!("{what}: largest message {largest} B, per peer {per_peer} B");
    assert!(
        largest * 2 <= limits.max_message_bytes,
        "{what}: message {largest} vs {limits:?}"
    );
    assert!(
        per_peer as usize * 2 <= limits.max_bytes_per_peer,
        "{what}: per peer {per_peer} vs {limits:?}"
    );
}

#[test]
fn triple_traffic_is_well_within_the_limits() {
    for n in [2u32, 3, 5, 7] {
        let participants = ids(0..n);
        let limits = triple_limits(participants.len());
        let parties: Vec<_> = participants
            .iter()
            .map(|&p| (p, generate_triple(&participants, p, 2, limits).unwrap()))
            .collect();
        // Count what each party receives from each other party: that is what the limit bounds.
        let pairs = Rc::new(RefCell::new(BTreeMap::<
            (ParticipantId, ParticipantId),
            (usize, u64),
        >::new()));
        let observed = pairs.clone();
        let report = Simulation::new(parties, 0)
            .with_faults(Box::new(move |envelope, _| {
                let mut pairs = observed.borrow_mut();
                let entry = pairs.entry((envelope.from, envelope.to)).or_default();
                entry.0 = entry.0.max(envelope.payload.len());
                entry.1 += envelope.payload.len() as u64;
                Fate::Deliver
            }))
            .run();
        report.into_result().unwrap();
        let (largest, per_peer) = pairs
            .borrow()
            .values()
            .fold((0, 0), |(l, t), &(largest, total)| {
                (l.max(largest), t.max(total))
            });
        assert_headroom(&format!("triple n={n}"), limits, largest, per_peer);
    }
}

#[test]
fn keygen_traffic_is_well_within_the_limits() {
    for n in [2u32, 5, 10, 16] {
        let participants = ids(0..n);
        let limits = key_limits(participants.len());
        let parties: Vec<_> = participants
            .iter()
            .map(|&p| (p, keygen(&participants, p, 2, limits).unwrap()))
            .collect();
        let report = Simulation::new(parties, 0).run();
        let stats = report.stats.clone();
        report.into_result().unwrap();
        let stat = stats[&ParticipantId(0)];
        let per_peer = stat.bytes_sent / u64::from(n - 1);
        assert_headroom(
            &format!("keygen n={n}"),
            limits,
            stat.largest_message,
            per_peer,
        );
    }
}
