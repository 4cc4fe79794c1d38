//! `chainsig eth` and `chainsig btc`: the `chains` crate does the work; this prints it, and
//! serves `--home DIR` by signing through the local network in DIR.

use std::path::Path;

use chainsig_chains::{ChainsError, RemoteSigner, Signer};
use chainsig_primitives::{Payload, PublicKey, SignRequest, SignatureResponse};

use super::local::files::Network;
use super::local::signing::SignClient;
use crate::error::CliError;

pub fn print(result: Result<String, ChainsError>) -> Result<(), CliError> {
    let output = result.map_err(CliError::from)?;
    println!("{output}");
    Ok(())
}

impl From<ChainsError> for CliError {
    fn from(error: ChainsError) -> Self {
        match error {
            ChainsError::Input(message) => CliError::Input(message),
            ChainsError::Failed(message) => CliError::Failed(message),
        }
    }
}

impl From<CliError> for ChainsError {
    fn from(error: CliError) -> Self {
        match error {
            CliError::Input(message) => ChainsError::Input(message),
            CliError::Failed(message) => ChainsError::Failed(message),
        }
    }
}

/// `--home DIR`: a signer whose every signature is a real `sign` transaction to the local
/// network's contract, as `account` (default: the network's user).
pub fn home_signer(home: &Path, account: Option<&str>) -> Result<Box<dyn Signer>, ChainsError> {
    let network = Network::load(home)?;
    let root = PublicKey::parse(&network.root_public_key)
        .map_err(|e| ChainsError::Failed(format!("{}: root_public_key: {e}", home.display())))?;
    let client = SignClient::new(&network, home, account)?;
    let account = client.account().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ChainsError::Failed(format!("cannot start the async runtime: {e}")))?;
    let transport = move |request: &SignRequest| {
        let Payload::Ecdsa(payload) = request.payload;
        let signed = runtime.block_on(client.sign(&payload, &request.path))?;
        Ok(SignatureResponse::Secp256k1(signed.signature))
    };
    Ok(Box::new(RemoteSigner::new(root, account, transport)))
}
