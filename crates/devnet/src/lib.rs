//! A local NEAR-compatible chain that runs real contract wasm (see `DESIGN.md`, Devnet).
//!
//! Start one in-process with [`Devnet::start`] and a [`DevnetConfig`], or from a command line
//! with [`cli::DevnetArgs`] and [`cli::run`].

pub mod chain;
pub mod cli;
pub mod client;
pub mod error;
pub mod genesis;
pub mod node;
pub mod receipt;
pub mod rpc;
pub mod runtime;
pub mod signer_wasm;
pub mod state;
pub mod store;
pub mod views;

pub use error::DevnetError;
pub use node::{Devnet, DevnetConfig};
