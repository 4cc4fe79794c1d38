//! keygen → triples → presign → sign, reshare and refresh, with all parties in one process.

mod common;

use std::collections::BTreeMap;

use chainsig_mpc::keygen::key_limits;
use chainsig_mpc::simulation::run_honest;
use chainsig_mpc::{refresh, reshare, KeyShare, ParticipantId};
use chainsig_primitives::k256::ecdsa::signature::hazmat::PrehashVerifier;
use chainsig_primitives::k256::ecdsa::VerifyingKey;
use chainsig_primitives::k256::{AffinePoint, ProjectivePoint, Scalar};
use chainsig_primitives::{derive_public_key, PublicKey};
use common::*;

/// The derived key, the signature verifies with `k256` itself, and recovery gives the key.
fn check_signature(
    root: &AffinePoint,
    args: &chainsig_mpc::SignArgs,
    signature: &chainsig_primitives::EcdsaSignature,
) {
    let derived = derive_public_key(root, &args.tweak).unwrap();
    let key = VerifyingKey::from_affine(derived).unwrap();
    key.verify_prehash(args.payload.as_bytes(), &signature.to_k256().unwrap())
        .expect("k256 accepts the signature under root + tweak·G");
    assert_eq!(
        signature.recover(&args.payload).unwrap(),
        PublicKey::from_affine(derived).unwrap()
    );
    assert!(
        signature.to_k256().unwrap().normalize_s().is_none(),
        "s is low"
    );
}

/// Interpolates the secret key from `threshold` shares: only a test can see it.
fn reconstruct(shares: &BTreeMap<ParticipantId, KeyShare>) -> Scalar {
    let points: Vec<_> = shares.keys().copied().collect();
    let x = |p: ParticipantId| Scalar::from(u64::from(p.0) + 1);
    shares
        .iter()
        .map(|(&p, share)| {
            let (mut num, mut den) = (Scalar::ONE, Scalar::ONE);
            for &q in points.iter().filter(|&&q| q != p) {
                num *= x(q);
                den *= x(q) - x(p);
            }
            num * den.invert().unwrap() * share.private_share()
        })
        .sum()
}

fn full_flow(n: u32, threshold: usize) {
    let participants = ids(0..n);
    let keys = run_keygen(&participants, threshold);
    let root = keys[&participants[0]].public_key;
    assert!(keys
        .values()
        .all(|k| k.public_key == root && k.threshold == threshold));
    assert_eq!(
        (ProjectivePoint::GENERATOR * reconstruct(&keys)).to_affine(),
        root
    );

    // Sign with exactly `threshold` of the participants, led by the last of them.
    let signers = participants[participants.len() - threshold..].to_vec();
    let presignatures = run_presign(&keys, &signers);
    let args = sign_args("alice.near", &format!("ethereum-{n}"), [n as u8; 32]);
    let signature = run_sign(&keys, presignatures, *signers.last().unwrap(), &args);
    check_signature(&root, &args, &signature);
}

#[test]
fn three_parties_threshold_two() {
    full_flow(3, 2);
}

#[test]
fn five_parties_threshold_three() {
    full_flow(5, 3);
}

#[test]
fn seven_parties_threshold_five() {
    full_flow(7, 5);
}

#[test]
fn reshare_moves_the_same_key_to_a_new_set_and_threshold() {
    let old = ids(0..5);
    let keys = run_keygen(&old, 3);
    let root = keys[&old[0]].public_key;

    // Participant 4 leaves, participant 5 joins, the threshold goes from 3 to 4.
    let new = ids([0, 1, 2, 3, 5]);
    let limits = key_limits(new.len());
    let reshared = run_honest(new.iter().map(|&p| {
        let protocol = reshare(&old, 3, &new, 4, p, keys.get(&p), root, limits).unwrap();
        (p, protocol)
    }))
    .unwrap();
    assert!(reshared
        .values()
        .all(|k| k.public_key == root && k.threshold == 4));
    assert_eq!(reshared.keys().copied().collect::<Vec<_>>(), new);
    assert_eq!(
        (ProjectivePoint::GENERATOR * reconstruct(&reshared)).to_affine(),
        root
    );

    let signers = ids([1, 2, 3, 5]);
    let presignatures = run_presign(&reshared, &signers);
    let args = sign_args("bob.near", "btc", [9; 32]);
    let signature = run_sign(&reshared, presignatures, ParticipantId(5), &args);
    check_signature(&root, &args, &signature);
}

#[test]
fn refresh_changes_every_share_but_not_the_key() {
    let participants = ids(0..3);
    let keys = run_keygen(&participants, 2);
    let root = keys[&participants[0]].public_key;
    let limits = key_limits(participants.len());
    let refreshed = run_honest(
        keys.iter()
            .map(|(&p, key)| (p, refresh(key, limits).unwrap())),
    )
    .unwrap();
    for (p, key) in &refreshed {
        assert_eq!(key.public_key, root);
        assert_ne!(key.private_share(), keys[p].private_share());
    }
    let presignatures = run_presign(&refreshed, &participants);
    let args = sign_args("carol.near", "", [1; 32]);
    let signature = run_sign(&refreshed, presignatures, ParticipantId(0), &args);
    check_signature(&root, &args, &signature);
}

#[test]
fn single_and_batched_triples_are_valid_beaver_triples() {
    let participants = ids(0..3);
    let batch = run_triples(&participants, 2, 4);
    assert!(batch.values().all(|t| t.len() == 4));
    let firsts: Vec<_> = batch.values().map(|t| t[0].big_a).collect();
    assert!(
        firsts.windows(2).all(|w| w[0] == w[1]),
        "parties agree on the triple"
    );
    let distinct: std::collections::HashSet<_> = batch[&participants[0]]
        .iter()
        .map(|t| format!("{:?}", t.big_a))
        .collect();
    assert_eq!(distinct.len(), 4, "a batch makes distinct triples");

    let limits = chainsig_mpc::triples::triple_limits(3);
    let single = run_honest(participants.iter().map(|&p| {
        (
            p,
            chainsig_mpc::generate_triple(&participants, p, 2, limits).unwrap(),
        )
    }))
    .unwrap();
    assert_eq!(single.len(), 3);
}

#[test]
fn same_request_on_two_presignatures_gives_two_valid_signatures() {
    let participants = ids(0..3);
    let keys = run_keygen(&participants, 2);
    let root = keys[&participants[0]].public_key;
    let args = sign_args("dave.near", "x", [3; 32]);
    let first = run_sign(
        &keys,
        run_presign(&keys, &participants),
        ParticipantId(1),
        &args,
    );
    let second = run_sign(
        &keys,
        run_presign(&keys, &participants),
        ParticipantId(2),
        &args,
    );
    check_signature(&root, &args, &first);
    check_signature(&root, &args, &second);
    assert_ne!(
        first.big_r(),
        second.big_r(),
        "fresh nonce per presignature"
    );
}
