//! Destination addresses of a derived public key.
//!
//! - EVM: the last 20 bytes of `keccak256(x ‖ y)` of the uncompressed key, EIP-55 checksummed.
//! - Bitcoin: P2WPKH (`witness v0`, `HASH160` of the *compressed* key), bech32.

use core::fmt;
use core::str::FromStr;

use alloy_primitives::Address as EvmAddress;
use bitcoin::{Address as BtcAddress, CompressedPublicKey};
use chainsig_primitives::PublicKey;
use serde::Serialize;

use crate::error::ChainsError;

/// The Bitcoin networks this crate builds addresses and transactions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum BtcNetwork {
    #[default]
    Mainnet,
    Testnet,
    Regtest,
}

impl BtcNetwork {
    pub const NAMES: [&'static str; 3] = ["mainnet", "testnet", "regtest"];

    pub fn as_str(&self) -> &'static str {
        match self {
            BtcNetwork::Mainnet => "mainnet",
            BtcNetwork::Testnet => "testnet",
            BtcNetwork::Regtest => "regtest",
        }
    }

    /// The `bitcoin` crate's network. Testnet addresses (`tb1…`) are also valid on signet and
    /// testnet4, which share the prefix.
    pub fn to_bitcoin(&self) -> bitcoin::Network {
        match self {
            BtcNetwork::Mainnet => bitcoin::Network::Bitcoin,
            BtcNetwork::Testnet => bitcoin::Network::Testnet,
            BtcNetwork::Regtest => bitcoin::Network::Regtest,
        }
    }
}

impl fmt::Display for BtcNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BtcNetwork {
    type Err = ChainsError;

    fn from_str(s: &str) -> Result<Self, ChainsError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mainnet" | "bitcoin" => Ok(BtcNetwork::Mainnet),
            "testnet" => Ok(BtcNetwork::Testnet),
            "regtest" => Ok(BtcNetwork::Regtest),
            _ => Err(ChainsError::Input(format!(
                "unknown bitcoin network `{s}`: expected one of mainnet, testnet, regtest"
            ))),
        }
    }
}

/// The EVM address of a public key.
pub fn evm_address(public_key: &PublicKey) -> EvmAddress {
    let uncompressed = public_key.to_sec1_uncompressed();
    EvmAddress::from_raw_public_key(&uncompressed[1..])
}

/// The EIP-55 checksummed form of [`evm_address`] (`0x` and 40 mixed-case hex digits).
pub fn evm_address_checksummed(public_key: &PublicKey) -> String {
    evm_address(public_key).to_checksum(None)
}

/// The key in the `bitcoin` crate's form. Never fails: [`PublicKey`] is always a valid point.
pub fn btc_public_key(public_key: &PublicKey) -> CompressedPublicKey {
    CompressedPublicKey::from_slice(&public_key.to_sec1_compressed())
        .expect("a chainsig PublicKey is always a valid secp256k1 point")
}

/// The P2WPKH address of a public key on `network`.
pub fn btc_p2wpkh_address(public_key: &PublicKey, network: BtcNetwork) -> BtcAddress {
    BtcAddress::p2wpkh(&btc_public_key(public_key), network.to_bitcoin())
}

/// Every destination address of one derived key, as `chainsig derive` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Addresses {
    /// EIP-55 checksummed.
    pub evm_address: String,
    /// bech32 P2WPKH on the chosen network.
    pub btc_p2wpkh: String,
}

impl Addresses {
    /// The text lines `chainsig derive` prints for them, aligned like its other lines.
    pub fn text_lines(&self) -> String {
        format!(
            "evm_address {}\nbtc_p2wpkh  {}",
            self.evm_address, self.btc_p2wpkh
        )
    }
}

/// The addresses of a (derived) public key; `btc_network` picks the P2WPKH prefix.
pub fn addresses(public_key: &PublicKey, btc_network: BtcNetwork) -> Addresses {
    Addresses {
        evm_address: evm_address_checksummed(public_key),
        btc_p2wpkh: btc_p2wpkh_address(public_key, btc_network).to_string(),
    }
}

/// Parses an EVM address: `0x` and 40 hex digits. An all-lower or all-upper case address is
/// taken as is; a mixed-case one must carry a valid EIP-55 checksum (a typo is caught).
pub fn parse_evm_address(s: &str) -> Result<EvmAddress, ChainsError> {
    let s = s.trim();
    let Some(digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return Err(ChainsError::Input(format!(
            "`{s}` is not an EVM address: expected 0x and 40 hex digits"
        )));
    };
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ChainsError::Input(format!(
            "`{s}` is not an EVM address: expected 0x and 40 hex digits"
        )));
    }
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        EvmAddress::parse_checksummed(format!("0x{digits}"), None).map_err(|_| {
            ChainsError::Input(format!("`{s}` has an invalid EIP-55 checksum (a typo?)"))
        })
    } else {
        digits
            .parse::<EvmAddress>()
            .map_err(|e| ChainsError::Input(format!("`{s}` is not an EVM address: {e}")))
    }
}

/// Parses a Bitcoin address and checks that it belongs to `network`.
pub fn parse_btc_address(s: &str, network: BtcNetwork) -> Result<BtcAddress, ChainsError> {
    let s = s.trim();
    let unchecked = BtcAddress::from_str(s).map_err(|e| {
        let lower = s.to_ascii_lowercase();
        let segwit = ["bc1", "tb1", "bcrt1"]
            .iter()
            .any(|hrp| lower.starts_with(hrp));
        if segwit {
            // The bitcoin crate falls back to base58 and reports that; say what it is instead.
            ChainsError::Input(format!(
                "`{s}` is not a valid bech32 address (a typo, or a wrong checksum?)"
            ))
        } else {
            ChainsError::Input(format!("`{s}` is not a bitcoin address: {e}"))
        }
    })?;
    unchecked
        .require_network(network.to_bitcoin())
        .map_err(|_| ChainsError::Input(format!("`{s}` is not an address on bitcoin {network}")))
}
