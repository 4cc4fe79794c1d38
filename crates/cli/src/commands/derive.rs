//! `chainsig derive`: the tweak and derived public key of (account, path).

use std::path::PathBuf;

use chainsig_primitives::{derive_public_key, derive_tweak, PublicKey};
use clap::Args;
use near_account_id::AccountId;
use serde_json::json;

use super::local::files::Network;
use crate::error::CliError;

#[derive(Args)]
pub struct DeriveArgs {
    /// The network's root public key: `secp256k1:<base58>` or SEC1 hex (for offline use).
    #[arg(long, required_unless_present = "home", conflicts_with = "home")]
    root_public_key: Option<String>,
    /// Take the root key from the local network in this home (its `network.json`).
    #[arg(long)]
    home: Option<PathBuf>,
    /// The NEAR account that calls `sign` (the predecessor).
    #[arg(long)]
    account: String,
    /// The derivation path the account passes to `sign`.
    #[arg(long, default_value = "")]
    path: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    addresses: chainsig_chains::cli::DeriveAddressArgs,
}

/// The root key: given on the command line, or the one the local network reports.
fn root_key(args: &DeriveArgs) -> Result<PublicKey, CliError> {
    match (&args.root_public_key, &args.home) {
        (Some(key), None) => {
            PublicKey::parse(key).map_err(|e| CliError::input("--root-public-key", e))
        }
        (None, Some(home)) => {
            let network = Network::load(home)?;
            PublicKey::parse(&network.root_public_key)
                .map_err(|e| CliError::Failed(format!("network.json root_public_key: {e}")))
        }
        _ => Err(CliError::Input(
            "give exactly one of --root-public-key and --home".into(),
        )),
    }
}

pub fn run(args: DeriveArgs) -> Result<(), CliError> {
    let root = root_key(&args)?;
    let account: AccountId = args
        .account
        .parse()
        .map_err(|e| CliError::input("--account", e))?;
    let tweak =
        derive_tweak(account.as_str(), &args.path).map_err(|e| CliError::input("--path", e))?;
    let derived = derive_public_key(root.as_affine(), &tweak)
        .and_then(PublicKey::from_affine)
        .map_err(|e| CliError::Failed(format!("derivation failed: {e}")))?;
    let sec1 = hex::encode(derived.to_sec1_compressed());
    let addresses = args.addresses.addresses(&derived)?;
    if args.json {
        let output = json!({
            "account": account.as_str(),
            "path": args.path,
            "tweak": tweak.to_hex(),
            "public_key": derived.to_near_string(),
            "public_key_sec1": sec1,
            "public_key_sec1_uncompressed": hex::encode(derived.to_sec1_uncompressed()),
            "evm_address": addresses.evm_address,
            "btc_p2wpkh": addresses.btc_p2wpkh,
        });
        println!("{output}");
    } else {
        println!("tweak       {}", tweak.to_hex());
        println!("public_key  {}", derived.to_near_string());
        println!("sec1        {sec1}");
        println!("{}", addresses.text_lines());
    }
    Ok(())
}
