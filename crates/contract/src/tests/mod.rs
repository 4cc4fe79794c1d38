//! Native tests: the state machine on its own, property tests over random vote sequences, and
//! the `#[near]` layer against near-sdk's mocked blockchain.

mod contract;
mod props;
mod state;

use chainsig_primitives::k256::{ProjectivePoint, Scalar};
use chainsig_primitives::PublicKey;
use near_sdk::AccountId;

use crate::state::{CandidateInfo, NodeKey};

pub fn account(name: &str) -> AccountId {
    name.parse().expect("test account id")
}

pub fn node_key(seed: u8) -> NodeKey {
    NodeKey::from_parts(near_sdk::CurveType::ED25519, vec![seed; 32]).expect("ed25519 key")
}

pub fn candidate(name: &str) -> CandidateInfo {
    let seed = name.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    CandidateInfo {
        account_id: account(name),
        url: format!("https://{name}:3000"),
        tls_public_key: node_key(seed),
        sign_public_key: node_key(seed.wrapping_add(1)),
    }
}

pub fn root_secret(seed: u64) -> Scalar {
    Scalar::from(seed) * Scalar::from(0x1234_5678_9abc_def1u64) + Scalar::from(7u64)
}

pub fn root_key(seed: u64) -> PublicKey {
    PublicKey::from_affine((ProjectivePoint::GENERATOR * root_secret(seed)).to_affine())
        .expect("non-zero key")
}
