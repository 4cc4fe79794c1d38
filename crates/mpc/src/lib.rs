//! chainsig's threshold-ECDSA engine.
//!
//! Every protocol is a sans-IO state machine behind one interface, [`Protocol`]: feed it the
//! messages peers sent ([`Protocol::receive`]) and poll it ([`Protocol::poll`]) for messages to
//! send or for its result. Nothing here opens a socket, reads a clock or touches a disk: the
//! caller passes the time in, so the same code runs under the node's network loop and under
//! the deterministic in-process [`simulation`].
//!
//! The cryptography is `cait-sith` 0.8 (keygen, refresh, reshare, triples, presignatures),
//! wrapped by [`adapter`] so that a peer's garbage is an error naming that peer, never a panic,
//! and every wait has a deadline. Two parts are our own:
//! - [`batch`] runs many instances (e.g. triples) as one, with one message per peer per step;
//! - [`sign`] rerandomizes the presignature for the request and derived key (see DESIGN.md)
//!   and runs the one-round signing step itself, so the leader gets a low-s signature with a
//!   consistent nonce point and recovery id from a single verification.
//!
//! A presignature signs once. [`sign`] takes it by value and it cannot be cloned, so signing
//! twice with one presignature does not compile:
//!
//! ```compile_fail,E0382
//! use chainsig_mpc::{sign, sign::sign_limits, KeyShare, Presignature, SignArgs};
//! fn twice(key: &KeyShare, presignature: Presignature, args: &SignArgs) {
//!     let _first = sign(key, presignature, key.me, args, sign_limits());
//!     let _second = sign(key, presignature, key.me, args, sign_limits());
//! }
//! ```
//!
//! (The same function with one call compiles:)
//!
//! ```
//! use chainsig_mpc::{sign, sign::sign_limits, KeyShare, Presignature, SignArgs};
//! fn once(key: &KeyShare, presignature: Presignature, args: &SignArgs) {
//!     let _only = sign(key, presignature, key.me, args, sign_limits());
//! }
//! ```

pub mod adapter;
pub mod batch;
pub mod error;
pub mod keygen;
pub mod presign;
pub mod protocol;
pub mod rerandomize;
pub mod sign;
pub mod simulation;
pub mod triples;

pub use chainsig_primitives::ParticipantId;
pub use error::ProtocolError;
pub use keygen::{keygen, refresh, reshare, KeyShare};
pub use presign::{presign, Presignature};
pub use protocol::{BoxedProtocol, Limits, Outgoing, Protocol, Recipient, Step};
pub use sign::{sign, SignArgs};
pub use triples::{generate_triple, generate_triples, Triple};
