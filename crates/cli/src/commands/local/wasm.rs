//! Where the contract wasm comes from: `--contract-wasm`, else what the devnet crate finds
//! (`CHAINSIG_CONTRACT_WASM`, the workspace's wasm32 release output, or a fresh build with
//! `scripts/build-contract.sh` when running from the source tree).

use std::path::{Path, PathBuf};

use chainsig_devnet::signer_wasm;

use crate::error::CliError;

/// Finds (or builds) the wasm and reads it.
pub fn load(flag: Option<&Path>) -> Result<(PathBuf, Vec<u8>), CliError> {
    let path = match flag {
        Some(path) => path.to_owned(),
        None => signer_wasm::locate().map_err(|e| {
            if e.starts_with("no contract wasm") {
                CliError::Input(format!("{e}, or pass --contract-wasm PATH"))
            } else {
                CliError::Failed(e)
            }
        })?,
    };
    let code = signer_wasm::read(&path).map_err(CliError::Input)?;
    Ok((path, code))
}
