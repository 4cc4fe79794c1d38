//! `chainsig sign`: one real `sign` transaction to the local network, its answer verified.

use std::path::PathBuf;

use chainsig_primitives::EcdsaPayload;
use clap::Args;

use super::local::files::Network;
use super::local::signing::{SignClient, Signed};
use crate::error::CliError;

#[derive(Args)]
pub struct SignArgs {
    /// Home directory of a running local network (`chainsig local up --home DIR`).
    #[arg(long, default_value = ".chainsig-local")]
    home: PathBuf,
    /// The 32-byte payload to sign (a hash), as 64 hex characters.
    #[arg(long)]
    payload: String,
    /// The derivation path.
    #[arg(long)]
    path: String,
    /// The account that calls `sign` (default: the network's user); its key file must be in
    /// the home.
    #[arg(long)]
    account: Option<String>,
    /// Print the contract's response object as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: SignArgs) -> Result<(), CliError> {
    let payload =
        EcdsaPayload::from_hex(&args.payload).map_err(|e| CliError::input("--payload", e))?;
    chainsig_primitives::derivation::check_path(&args.path)
        .map_err(|e| CliError::input("--path", e))?;
    let network = Network::load(&args.home)?;
    let client = SignClient::new(&network, &args.home, args.account.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    let signed = runtime.block_on(client.sign(&payload, &args.path))?;
    if args.json {
        println!("{}", signed.response);
    } else {
        print_text(&client, &args.path, &signed);
    }
    Ok(())
}

fn print_text(client: &SignClient, path: &str, signed: &Signed) {
    let s = &signed.signature;
    println!(
        "signature    verified against {} ({}, {path:?})",
        signed.derived_key,
        client.account()
    );
    println!(
        "big_r        {}",
        signed.response["big_r"]["affine_point"]
            .as_str()
            .unwrap_or("-")
    );
    println!(
        "s            {}",
        signed.response["s"]["scalar"].as_str().unwrap_or("-")
    );
    println!("recovery_id  {}", s.recovery_id());
    let respond = signed
        .blocks_to_respond
        .map_or("-".to_string(), |b| b.to_string());
    println!(
        "latency      {} ms; {respond} blocks to the respond, {} to the answer",
        signed.latency.as_millis(),
        signed.blocks,
    );
    println!("transaction  {}", signed.tx_hash);
}
