//! Shared types and math for chainsig. No I/O, no randomness of its own: the contract (wasm),
//! the MPC engine, the node and the clients all build on exactly the same definitions.
//!
//! - [`derivation`]: the per-(account, path) tweak and derived public keys.
//! - [`public_key`]: the `secp256k1:<base58>` and SEC1 forms of a public key.
//! - [`request`]: the `sign` arguments in both JSON forms clients send.
//! - [`signature`]: the Secp256k1 response, verification, low-s and recovery ids.
//! - [`participant`]: participant ids shared by the contract and the MPC engine.

pub mod derivation;
pub mod error;
pub mod participant;
pub mod public_key;
pub mod request;
pub mod signature;

pub use derivation::{derive_public_key, derive_tweak, Tweak};
pub use error::Error;
pub use participant::ParticipantId;
pub use public_key::PublicKey;
pub use request::{DomainId, EcdsaPayload, Payload, SignRequest, SignatureRequest};
pub use signature::{EcdsaSignature, SignatureResponse};

/// The curve types every crate uses, re-exported so that no crate pins a different `k256`.
pub use k256;
