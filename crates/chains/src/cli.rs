//! `chainsig eth transfer` and `chainsig btc send`, as clap argument structs and `run`
//! functions that return what to print. Mount them in the `chainsig` binary with
//! `#[command(subcommand)] Eth(chainsig_chains::cli::EthCommand)` and
//! `chainsig_chains::cli::run_eth(args)` (likewise `Btc`/`run_btc`); print the `Ok` string to
//! stdout, and for an `Err` print `error: {e}` and exit with `e.exit_code()` (2 for bad input).
//!
//! Signing: `--home DIR` means "sign through the local network in DIR"; the `*_with` variants
//! take a [`HomeSigner`] for it, which the `chainsig` binary provides (this crate does not talk
//! to NEAR). The other signer is **for local testing**: `--root-secret-key <hex>` and
//! `--account <id>` sign with `root_secret + tweak(account, path)`, the key the network would
//! use for that root. Never pass a real network's secret (a real network has none in one place).
//!
//! Relaying: with `--rpc-url` (Ethereum JSON-RPC) a missing nonce and fees are read from the
//! node, its chain id must match `--chain-id`, and the signed transaction is broadcast with
//! `eth_sendRawTransaction`; with `--esplora-url` UTXOs can be picked from the derived address
//! and the transaction is broadcast with `POST /tx`. The output then has a `broadcast` field.
//!
//! Every value is parsed here rather than by clap, so every input error is one line.

use std::path::{Path, PathBuf};

use alloy_primitives::{Bytes, U256};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::address::evm_address;
use crate::address::{
    addresses, btc_p2wpkh_address, parse_btc_address, parse_evm_address, Addresses, BtcNetwork,
};
use crate::btc::{select_utxos, sign_spend, BtcSpend, FeeRate, Payment, Utxo};
use crate::error::{ChainsError, Result};
use crate::eth::{sign_transfer, EthTransfer};
use crate::rpc::{suggested_max_fee, Esplora, EthRpc};
use crate::signer::{LocalSigner, Signer};

/// How the transaction gets signed. Exactly one of `--home` or the local-testing pair.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct SignerArgs {
    /// Sign through the local chainsig network whose files are in DIR (`chainsig local up`);
    /// with --account, as that account (its key file must be in DIR).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// LOCAL TESTING ONLY: stand in for the network with this root secret key (32 bytes hex);
    /// signs with root_secret + tweak(--account, --path). Requires --account.
    #[arg(long, value_name = "HEX")]
    pub root_secret_key: Option<String>,
    /// The NEAR account whose derived key signs: with --home, the account that sends `sign`
    /// (default: the network's user); with --root-secret-key (local testing), required.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Option<String>,
}

/// How `--home DIR` becomes a signer: given the directory and
/// `--account` (if any), a [`Signer`] (typically a [`crate::RemoteSigner`] whose transport
/// submits `sign` to that network's contract).
pub type HomeSigner<'a> = &'a dyn Fn(&Path, Option<&str>) -> Result<Box<dyn Signer>>;

/// The [`HomeSigner`] of a program that cannot reach a network (the library's own `run_*`).
pub fn no_home_signer(home: &Path, _account: Option<&str>) -> Result<Box<dyn Signer>> {
    Err(ChainsError::Failed(format!(
        "--home {}: this program does not sign through a network; \
         for local testing pass --root-secret-key and --account",
        home.display()
    )))
}

impl SignerArgs {
    /// The signer these flags ask for, `--home` not being available yet.
    pub fn signer(&self) -> Result<Box<dyn Signer>> {
        self.signer_with(&no_home_signer)
    }

    /// The signer these flags ask for, `--home` served by `home_signer`.
    pub fn signer_with(&self, home_signer: HomeSigner<'_>) -> Result<Box<dyn Signer>> {
        match (&self.home, &self.root_secret_key, &self.account) {
            (Some(_), Some(_), _) => Err(ChainsError::Input(
                "--home and --root-secret-key exclude each other".into(),
            )),
            (Some(home), None, account) => {
                if let Some(account) = account {
                    check_account_id(account)?;
                }
                home_signer(home, account.as_deref())
            }
            (None, Some(secret), Some(account)) => {
                check_account_id(account)?;
                let signer = LocalSigner::from_hex(secret, account.as_str()).map_err(|e| {
                    ChainsError::Input(format!("--root-secret-key: {}", e.message()))
                })?;
                Ok(Box::new(signer))
            }
            (None, Some(_), None) => Err(ChainsError::Input(
                "--root-secret-key needs --account".into(),
            )),
            (None, None, _) => Err(ChainsError::Input(
                "no signer: pass --home DIR, or for local testing --root-secret-key and --account"
                    .into(),
            )),
        }
    }
}

/// NEAR account id rules: 2 to 64 characters, lower-case letters, digits and `-_.` as
/// separators (no separator first, last or doubled).
pub fn check_account_id(account: &str) -> Result<()> {
    let bad = |why: &str| ChainsError::Input(format!("--account `{account}`: {why}"));
    if account.len() < 2 || account.len() > 64 {
        return Err(bad("a NEAR account id is 2 to 64 characters long"));
    }
    let mut previous_separator = true;
    for c in account.chars() {
        let separator = matches!(c, '-' | '_' | '.');
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || separator) {
            return Err(bad(
                "only lower-case letters, digits, `-`, `_` and `.` are allowed",
            ));
        }
        if separator && previous_separator {
            return Err(bad("separators may not start the id or follow each other"));
        }
        previous_separator = separator;
    }
    if previous_separator {
        return Err(bad("the id may not end with a separator"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// chainsig eth
// ---------------------------------------------------------------------------------------

/// `chainsig eth …`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum EthCommand {
    /// Build an EIP-1559 transaction from the derived address of --path, have its signing hash
    /// signed, check that it recovers to that address, and print it.
    Transfer(EthTransferArgs),
}

/// `chainsig eth transfer`
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct EthTransferArgs {
    #[command(flatten)]
    pub signer: SignerArgs,
    /// The derivation path whose key sends the transaction.
    #[arg(long, default_value = "")]
    pub path: String,
    /// The recipient, 0x and 40 hex digits (a mixed-case address must be EIP-55 valid).
    #[arg(long)]
    pub to: String,
    /// The value in wei (decimal, up to 2^256-1).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub value_wei: String,
    /// The sender's nonce (with --rpc-url, read from the node when omitted).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub nonce: Option<String>,
    /// The EIP-155 chain id (1 for Ethereum mainnet).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub chain_id: String,
    /// The gas limit; 21000 for a plain transfer.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub gas_limit: String,
    /// The most wei per gas the sender pays (with --rpc-url, read from the node when omitted).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_fee_per_gas: Option<String>,
    /// The tip in wei per gas (with --rpc-url, read from the node when omitted).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_priority_fee_per_gas: Option<String>,
    /// Call data, 0x-prefixed hex.
    #[arg(long, value_name = "0x…")]
    pub data: Option<String>,
    /// An Ethereum JSON-RPC endpoint: fills in a missing nonce and fees, and broadcasts.
    #[arg(long, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chainsig eth …` and returns what to print on stdout.
pub fn run_eth(command: EthCommand) -> Result<String> {
    run_eth_with(command, &no_home_signer)
}

/// [`run_eth`] with `--home` served by `home_signer`.
pub fn run_eth_with(command: EthCommand, home_signer: HomeSigner<'_>) -> Result<String> {
    match command {
        EthCommand::Transfer(args) => run_eth_transfer_with(args, home_signer),
    }
}

fn parse_u64(flag: &str, s: &str) -> Result<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChainsError::Input(format!(
            "{flag}: `{s}` is not a whole number"
        )));
    }
    s.parse()
        .map_err(|_| ChainsError::Input(format!("{flag}: {s} overflows 64 bits")))
}

fn parse_u128(flag: &str, s: &str) -> Result<u128> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChainsError::Input(format!(
            "{flag}: `{s}` is not a whole number"
        )));
    }
    s.parse()
        .map_err(|_| ChainsError::Input(format!("{flag}: {s} overflows 128 bits")))
}

fn parse_u256(flag: &str, s: &str) -> Result<U256> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChainsError::Input(format!(
            "{flag}: `{s}` is not a whole number"
        )));
    }
    U256::from_str_radix(s, 10)
        .map_err(|_| ChainsError::Input(format!("{flag}: {s} overflows 256 bits")))
}

fn parse_data(s: &str) -> Result<Bytes> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| ChainsError::Input(format!("--data: `{s}` must be 0x-prefixed hex")))?;
    hex::decode(digits)
        .map(Bytes::from)
        .map_err(|e| ChainsError::Input(format!("--data: {e}")))
}

/// `chainsig eth transfer`.
pub fn run_eth_transfer(args: EthTransferArgs) -> Result<String> {
    run_eth_transfer_with(args, &no_home_signer)
}

/// `chainsig eth transfer`, `--home` served by `home_signer`.
pub fn run_eth_transfer_with(args: EthTransferArgs, home_signer: HomeSigner<'_>) -> Result<String> {
    let to = parse_evm_address(&args.to)
        .map_err(|e| ChainsError::Input(format!("--to: {}", e.message())))?;
    let value = parse_u256("--value-wei", &args.value_wei)?;
    let chain_id = parse_u64("--chain-id", &args.chain_id)?;
    let gas_limit = parse_u64("--gas-limit", &args.gas_limit)?;
    let data = args
        .data
        .as_deref()
        .map(parse_data)
        .transpose()?
        .unwrap_or_default();
    let nonce = args
        .nonce
        .as_deref()
        .map(|s| parse_u64("--nonce", s))
        .transpose()?;
    let max_fee = args
        .max_fee_per_gas
        .as_deref()
        .map(|s| parse_u128("--max-fee-per-gas", s))
        .transpose()?;
    let max_priority_fee = args
        .max_priority_fee_per_gas
        .as_deref()
        .map(|s| parse_u128("--max-priority-fee-per-gas", s))
        .transpose()?;
    let rpc = args.rpc_url.as_deref().map(EthRpc::new).transpose()?;
    if rpc.is_none() {
        let missing: Vec<&str> = [
            (nonce.is_none(), "--nonce"),
            (max_fee.is_none(), "--max-fee-per-gas"),
            (max_priority_fee.is_none(), "--max-priority-fee-per-gas"),
        ]
        .into_iter()
        .filter_map(|(missing, flag)| missing.then_some(flag))
        .collect();
        if !missing.is_empty() {
            return Err(ChainsError::Input(format!(
                "{} required without --rpc-url",
                missing.join(", ")
            )));
        }
    }
    let signer = args.signer.signer_with(home_signer)?;
    let from = evm_address(&signer.public_key(&args.path)?);

    let (nonce, max_fee_per_gas, max_priority_fee_per_gas) = match &rpc {
        None => (
            nonce.unwrap_or_default(),
            max_fee.unwrap_or_default(),
            max_priority_fee.unwrap_or_default(),
        ),
        Some(rpc) => {
            let node_chain = rpc.chain_id()?;
            if node_chain != chain_id {
                return Err(ChainsError::Input(format!(
                    "--chain-id {chain_id}, but the node at --rpc-url is on chain {node_chain}"
                )));
            }
            let nonce = match nonce {
                Some(nonce) => nonce,
                None => rpc.transaction_count(from)?,
            };
            let priority = match max_priority_fee {
                Some(priority) => priority,
                // A suggested tip never above a max fee the user chose.
                None => {
                    let suggested = rpc.max_priority_fee_per_gas()?;
                    max_fee.map_or(suggested, |max| suggested.min(max))
                }
            };
            let max_fee = match max_fee {
                Some(max_fee) => max_fee,
                None => suggested_max_fee(rpc.base_fee_per_gas()?, priority),
            };
            (nonce, max_fee, priority)
        }
    };
    let transfer = EthTransfer {
        chain_id,
        nonce,
        to,
        value,
        data,
        gas_limit,
        max_fee_per_gas,
        max_priority_fee_per_gas,
    };
    transfer.validate()?;
    let signed = sign_transfer(signer.as_ref(), &args.path, &transfer)?;
    let out = signed.to_json();
    let broadcast = match &rpc {
        None => None,
        Some(rpc) => {
            let reported = rpc.send_raw_transaction(&signed.raw_transaction)?;
            if reported != signed.hash {
                return Err(ChainsError::Failed(format!(
                    "eth_sendRawTransaction: the node reports hash {reported}, expected {}",
                    signed.hash
                )));
            }
            Some(reported.to_string())
        }
    };
    if args.json {
        let mut value = serde_json::to_value(&out).map_err(|e| ChainsError::failed("json", e))?;
        if let Some(hash) = &broadcast {
            value["broadcast"] = json!(hash);
        }
        return Ok(value.to_string());
    }
    let mut text = format!(
        "from             {}\nhash             {}\nraw_transaction  {}",
        out.from, out.hash, out.raw_transaction
    );
    if let Some(hash) = &broadcast {
        text.push_str(&format!("\nbroadcast        {hash}"));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// chainsig btc
// ---------------------------------------------------------------------------------------

/// `chainsig btc …`
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum BtcCommand {
    /// Spend outputs of the P2WPKH address of --path: one signature per input (BIP143),
    /// every input verified by libbitcoinconsensus, and print the transaction.
    Send(BtcSendArgs),
}

/// `chainsig btc send`
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct BtcSendArgs {
    #[command(flatten)]
    pub signer: SignerArgs,
    /// The derivation path whose key owns the UTXOs.
    #[arg(long, default_value = "")]
    pub path: String,
    /// An output of the derived address to spend, `txid:vout:sats`; repeat for more.
    /// Required unless --esplora-url, which then picks confirmed ones, largest first.
    #[arg(long = "utxo", value_name = "TXID:VOUT:SATS", num_args = 1..)]
    pub utxos: Vec<String>,
    /// A payment, `address:sats`; repeat for more.
    #[arg(long = "to", value_name = "ADDRESS:SATS", num_args = 1.., required = true)]
    pub outputs: Vec<String>,
    /// Where the rest goes. Without it, a rest worth an output is refused, not paid as fee.
    #[arg(long, value_name = "ADDRESS")]
    pub change: Option<String>,
    /// The fee rate in sat/vB (at least 1; up to three decimals).
    #[arg(long, value_name = "SAT_PER_VB", allow_negative_numbers = true)]
    pub fee_rate: String,
    /// mainnet, testnet or regtest.
    #[arg(long, default_value = "mainnet")]
    pub btc_network: String,
    /// An Esplora API (e.g. https://…/api): picks UTXOs when no --utxo is given (change then
    /// returns to the derived address unless --change says otherwise), and broadcasts.
    #[arg(long, value_name = "URL")]
    pub esplora_url: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `chainsig btc …` and returns what to print on stdout.
pub fn run_btc(command: BtcCommand) -> Result<String> {
    run_btc_with(command, &no_home_signer)
}

/// [`run_btc`] with `--home` served by `home_signer`.
pub fn run_btc_with(command: BtcCommand, home_signer: HomeSigner<'_>) -> Result<String> {
    match command {
        BtcCommand::Send(args) => run_btc_send_with(args, home_signer),
    }
}

/// `chainsig btc send`.
pub fn run_btc_send(args: BtcSendArgs) -> Result<String> {
    run_btc_send_with(args, &no_home_signer)
}

/// `chainsig btc send`, `--home` served by `home_signer`.
pub fn run_btc_send_with(args: BtcSendArgs, home_signer: HomeSigner<'_>) -> Result<String> {
    let network: BtcNetwork = args
        .btc_network
        .parse()
        .map_err(|e: ChainsError| ChainsError::Input(format!("--btc-network: {}", e.message())))?;
    let utxos = args
        .utxos
        .iter()
        .map(|s| s.parse::<Utxo>())
        .collect::<Result<Vec<_>>>()?;
    let outputs = args
        .outputs
        .iter()
        .map(|s| Payment::parse(s, network))
        .collect::<Result<Vec<_>>>()?;
    let change = args
        .change
        .as_deref()
        .map(|s| {
            parse_btc_address(s, network)
                .map_err(|e| ChainsError::Input(format!("--change: {}", e.message())))
        })
        .transpose()?;
    let fee_rate: FeeRate = args.fee_rate.parse()?;
    let esplora = args.esplora_url.as_deref().map(Esplora::new).transpose()?;
    if utxos.is_empty() && esplora.is_none() {
        return Err(ChainsError::Input(
            "--utxo required without --esplora-url".into(),
        ));
    }
    let signer = args.signer.signer_with(home_signer)?;
    let from = btc_p2wpkh_address(&signer.public_key(&args.path)?, network);
    let (utxos, change) = match &esplora {
        Some(esplora) if utxos.is_empty() => {
            let change = change.unwrap_or_else(|| from.clone());
            let available = esplora.confirmed_utxos(&from)?;
            let chosen = select_utxos(&available, &outputs, Some(&change), fee_rate)?;
            (chosen, Some(change))
        }
        _ => (utxos, change),
    };
    let spend = BtcSpend {
        network,
        utxos,
        outputs,
        change,
        fee_rate,
    };
    let signed = sign_spend(signer.as_ref(), &args.path, &spend)?;
    let out = signed.to_json();
    let broadcast = match &esplora {
        None => None,
        Some(esplora) => {
            let reported = esplora.broadcast(&out.raw_transaction)?;
            if reported != signed.txid() {
                return Err(ChainsError::Failed(format!(
                    "esplora POST /tx: the server reports txid {reported}, expected {}",
                    out.txid
                )));
            }
            Some(reported.to_string())
        }
    };
    if args.json {
        let mut value = serde_json::to_value(&out).map_err(|e| ChainsError::failed("json", e))?;
        value["from"] = json!(from.to_string());
        if let Some(txid) = &broadcast {
            value["broadcast"] = json!(txid);
        }
        return Ok(value.to_string());
    }
    let mut text = format!(
        "from             {from}\ntxid             {}\nfee              {} sats ({} vB)\nraw_transaction  {}",
        out.txid, out.fee_sats, out.vsize, out.raw_transaction
    );
    if let Some(txid) = &broadcast {
        text.push_str(&format!("\nbroadcast        {txid}"));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// chainsig derive
// ---------------------------------------------------------------------------------------

/// The flag `chainsig derive` gains: `#[command(flatten)] btc: chainsig_chains::cli::DeriveAddressArgs`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct DeriveAddressArgs {
    /// The Bitcoin network of the printed P2WPKH address: mainnet, testnet or regtest.
    #[arg(long, default_value = "mainnet")]
    pub btc_network: String,
}

impl Default for DeriveAddressArgs {
    fn default() -> Self {
        Self {
            btc_network: BtcNetwork::default().to_string(),
        }
    }
}

impl DeriveAddressArgs {
    /// The addresses of `public_key` (the derived key); a bad `--btc-network` is a one-line
    /// input error.
    pub fn addresses(&self, public_key: &chainsig_primitives::PublicKey) -> Result<Addresses> {
        let network: BtcNetwork = self.btc_network.parse().map_err(|e: ChainsError| {
            ChainsError::Input(format!("--btc-network: {}", e.message()))
        })?;
        Ok(addresses(public_key, network))
    }
}
