//! Runs whole protocol pipelines with every party in this process.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::simulation::run_honest;
use chainsig_mpc::triples::triple_limits;
use chainsig_mpc::{
    generate_triples, keygen, presign, sign, KeyShare, ParticipantId, Presignature, SignArgs,
    Triple,
};
use chainsig_primitives::{derive_tweak, EcdsaPayload, EcdsaSignature};

pub fn ids(range: impl IntoIterator<Item = u32>) -> Vec<ParticipantId> {
    range.into_iter().map(ParticipantId).collect()
}

pub fn run_keygen(
    participants: &[ParticipantId],
    threshold: usize,
) -> BTreeMap<ParticipantId, KeyShare> {
    let limits = key_limits(participants.len());
    run_honest(
        participants
            .iter()
            .map(|&p| (p, keygen(participants, p, threshold, limits).unwrap())),
    )
    .unwrap()
}

/// `count` triples among `participants`, in one batch.
pub fn run_triples(
    participants: &[ParticipantId],
    threshold: usize,
    count: usize,
) -> BTreeMap<ParticipantId, Vec<Triple>> {
    let limits = triple_limits(participants.len());
    run_honest(participants.iter().map(|&p| {
        (
            p,
            generate_triples(participants, p, threshold, count, limits).unwrap(),
        )
    }))
    .unwrap()
}

/// One presignature per party, made from two fresh triples.
pub fn run_presign(
    keys: &BTreeMap<ParticipantId, KeyShare>,
    participants: &[ParticipantId],
) -> BTreeMap<ParticipantId, Presignature> {
    let threshold = keys[&participants[0]].threshold;
    let mut triples = run_triples(participants, threshold, 2);
    run_honest(participants.iter().map(|&p| {
        let mut mine = triples.remove(&p).unwrap();
        let (t1, t0) = (mine.pop().unwrap(), mine.pop().unwrap());
        (
            p,
            presign(participants, &keys[&p], t0, t1, presign_limits()).unwrap(),
        )
    }))
    .unwrap()
}

pub fn sign_args(account: &str, path: &str, payload: [u8; 32]) -> SignArgs {
    SignArgs {
        payload: EcdsaPayload::from_bytes(payload).unwrap(),
        tweak: derive_tweak(account, path).unwrap(),
        entropy: [0x5a; 32],
    }
}

/// Signs with every party's presignature; returns the leader's signature.
pub fn run_sign(
    keys: &BTreeMap<ParticipantId, KeyShare>,
    presignatures: BTreeMap<ParticipantId, Presignature>,
    leader: ParticipantId,
    args: &SignArgs,
) -> EcdsaSignature {
    let outputs = run_honest(presignatures.into_iter().map(|(p, presignature)| {
        (
            p,
            sign(&keys[&p], presignature, leader, args, sign_limits()).unwrap(),
        )
    }))
    .unwrap();
    for (party, output) in &outputs {
        assert_eq!(
            output.is_some(),
            *party == leader,
            "only the leader gets the signature"
        );
    }
    outputs[&leader].unwrap()
}
