//! The chainsig MPC node. This crate grows module by module:
//!
//! - [`storage`]: key shares, triples and presignatures in `redb`, encrypted at rest, with
//!   use-once semantics that survive crashes.
pub mod storage;
