#![allow(dead_code)]
//! Shared test fixtures: the root key of `scripts/kat_addresses.py` and a local signer.

use chainsig_chains::LocalSigner;
use chainsig_primitives::PublicKey;

/// `sha256("chainsig test root key") mod n`, as in `scripts/kat_addresses.py`.
pub const ROOT_SECRET: &str = "e8a495a9fa68c4ad3aaf5b70a3b0177caec029ac4b03e96471a549d7acb744c1";
pub const ROOT_COMPRESSED: &str =
    "0328e30c53e8ce2eaf4b39c2a3828bed7fae705d514d2b7b1136dc6fd27b8b5961";

pub fn signer(account: &str) -> LocalSigner {
    LocalSigner::from_hex(ROOT_SECRET, account).unwrap()
}

pub fn root() -> PublicKey {
    PublicKey::parse(ROOT_COMPRESSED).unwrap()
}

pub mod mock;
