//! Rules of signing that hold for every request: whatever the account, path, payload, block
//! entropy and leader, the network's signature verifies under `root + tweak·G` and recovers
//! to it. Triples come from the insecure dealer here, which is fine for checking the math
//! after them and keeps each case fast.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chainsig_mpc::presign::presign_limits;
use chainsig_mpc::sign::sign_limits;
use chainsig_mpc::simulation::run_honest;
use chainsig_mpc::triples::deal_insecure;
use chainsig_mpc::{presign, sign, KeyShare, ParticipantId, SignArgs};
use chainsig_primitives::{derive_public_key, derive_tweak, EcdsaPayload, PublicKey};
use common::{ids, run_keygen};
use proptest::prelude::*;

fn keys() -> &'static BTreeMap<ParticipantId, KeyShare> {
    static KEYS: OnceLock<BTreeMap<ParticipantId, KeyShare>> = OnceLock::new();
    KEYS.get_or_init(|| run_keygen(&ids(0..4), 3))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_request_gets_a_signature_under_its_derived_key(
        account in "[a-z0-9]{2,20}\\.near",
        path in ".{0,30}",
        payload in any::<[u8; 32]>().prop_filter_map("below n", |b| EcdsaPayload::from_bytes(b).ok()),
        entropy in any::<[u8; 32]>(),
        signers in proptest::sample::subsequence(vec![0u32, 1, 2, 3], 3..=4),
        leader_pick in any::<prop::sample::Index>(),
    ) {
        let keys = keys();
        let signers = ids(signers);
        let leader = *leader_pick.get(&signers);
        let (mut first, mut second) = (deal_insecure(&signers, 3), deal_insecure(&signers, 3));
        let presignatures = run_honest(signers.iter().map(|&p| {
            let protocol = presign(&signers, &keys[&p], first.remove(&p).unwrap(), second.remove(&p).unwrap(), presign_limits()).unwrap();
            (p, protocol)
        })).unwrap();
        let args = SignArgs { payload, tweak: derive_tweak(&account, &path).unwrap(), entropy };
        let outputs = run_honest(presignatures.into_iter().map(|(p, pre)| {
            (p, sign(&keys[&p], pre, leader, &args, sign_limits()).unwrap())
        })).unwrap();
        let signature = outputs[&leader].expect("the leader has the signature");
        let root = keys[&ParticipantId(0)].public_key;
        let derived = PublicKey::from_affine(derive_public_key(&root, &args.tweak).unwrap()).unwrap();
        prop_assert!(signature.verify(&derived, &payload).is_ok());
        prop_assert_eq!(signature.recover(&payload).unwrap(), derived);
    }
}
