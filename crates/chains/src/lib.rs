//! Destination chains for chainsig: the addresses of a derived key, and transactions built,
//! signed through a chain-signature [`Signer`] and checked by an independent path.
//!
//! - [`address`]: EVM (EIP-55) and Bitcoin P2WPKH addresses of a derived key.
//! - [`signer`]: the [`Signer`] seam, and [`LocalSigner`], a stand-in for the MPC network with a
//!   local root secret (testing and offline use only).
//! - [`eth`]: EIP-1559 transfers; the signed transaction's sender is recovered and compared.
//! - [`btc`]: P2WPKH spends; every input is verified by libbitcoinconsensus.
//! - [`rpc`]: Ethereum JSON-RPC and Esplora clients to fill in and relay transactions.
//! - [`cli`]: `chainsig eth transfer` and `chainsig btc send`, ready to mount.

pub mod address;
pub mod btc;
pub mod cli;
pub mod error;
pub mod eth;
pub mod rpc;
pub mod signer;

pub use address::{addresses, Addresses, BtcNetwork};
pub use error::ChainsError;
pub use signer::{LocalSigner, RemoteSigner, SignTransport, Signer};

/// The crates whose types appear in this crate's API, re-exported so callers match versions.
pub use alloy_consensus;
pub use alloy_primitives;
pub use bitcoin;
