//! The chainsig MPC node. This crate grows module by module:
//!
//! - [`storage`]: key shares, triples and presignatures in `redb`, encrypted at rest, with
//!   use-once semantics that survive crashes.
//! - [`config`]: the TOML configuration, checked field by field.
//! - [`keys`]: the node's account key file and TLS key file.
//! - [`leader`]: which participant leads each sign request.
//! - [`stockpile`]: when to generate triples and presignatures.
//! - [`mesh`]: mutual TLS 1.3 between nodes, keys pinned to those the contract lists.
//! - [`runner`]: engine protocols driven over the mesh.
//! - [`http`]: `/health`, `/metrics`, `/state` and a status page.
//! - [`chain`]: NEAR JSON-RPC access: contract views, signed calls, final blocks.
//! - [`indexer`]: follows final blocks and finds the `sign` requests in them.
pub mod chain;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod http;
pub mod indexer;
pub mod keys;
pub mod leader;
pub mod mesh;
pub mod runner;
pub mod stockpile;
pub mod storage;
