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
//! - [`contract_state`]: the contract's `state()` as the node reads it.
//! - [`jobs`]: announcements of triple, presignature and signature runs between nodes.
//! - [`assets`]: the owner's index of its triples and presignatures.
//! - [`requests`]: the sign requests pending and who leads each.
//! - [`health`]: whom to start runs with: caught-up participants that are not failing.
//! - [`tasks`]: the runs (keygen, triples, presignatures, signatures) and their transactions.
//! - [`coordinator`]: maps the contract's state to what the node does.
//! - [`daemon`]: the node process, everything wired together.
//! - [`faults`]: faults a test can switch on in a real node (a participant that goes mute).
//! - [`chain`]: NEAR JSON-RPC access: contract views, signed calls, final blocks.
//! - [`indexer`]: follows final blocks and finds the `sign` requests in them.
pub mod assets;
pub mod chain;
pub mod cli;
pub mod config;
pub mod contract_state;
pub mod coordinator;
pub mod daemon;
pub mod faults;
pub mod health;
pub mod http;
pub mod indexer;
pub mod jobs;
pub mod keys;
pub mod leader;
pub mod mesh;
pub mod requests;
pub mod runner;
pub mod stockpile;
pub mod storage;
pub mod tasks;
