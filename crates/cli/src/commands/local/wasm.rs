//! Where the contract wasm comes from: `--contract-wasm`, `CHAINSIG_CONTRACT_WASM`, the
//! workspace's wasm32 release output, or, when running from the source tree, a fresh build
//! with `scripts/build-contract.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::CliError;

pub const ENV_VAR: &str = "CHAINSIG_CONTRACT_WASM";
const RELATIVE_OUTPUT: &str = "wasm32-unknown-unknown/release/chainsig_contract.wasm";

/// The source tree this binary was built from, if it is still there.
fn workspace_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("scripts/build-contract.sh")
        .is_file()
        .then_some(root)
}

/// Release outputs of the workspace: `$CARGO_TARGET_DIR` first, then `<workspace>/target`.
fn built_outputs() -> Vec<PathBuf> {
    let mut outputs = Vec::new();
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        outputs.push(PathBuf::from(target).join(RELATIVE_OUTPUT));
    }
    if let Some(root) = workspace_root() {
        outputs.push(root.join("target").join(RELATIVE_OUTPUT));
    }
    outputs
}

/// Finds (or builds) the wasm and reads it.
pub fn load(flag: Option<&Path>) -> Result<(PathBuf, Vec<u8>), CliError> {
    let path = locate(flag)?;
    let code = std::fs::read(&path)
        .map_err(|e| CliError::Input(format!("contract wasm {}: {e}", path.display())))?;
    if !code.starts_with(b"\0asm") {
        return Err(CliError::Input(format!(
            "contract wasm {}: not a wasm module",
            path.display()
        )));
    }
    Ok((path, code))
}

fn locate(flag: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(path) = flag {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os(ENV_VAR) {
        return Ok(PathBuf::from(path));
    }
    if let Some(found) = built_outputs().into_iter().find(|p| p.is_file()) {
        return Ok(found);
    }
    match workspace_root() {
        Some(root) => build(&root),
        None => Err(CliError::Input(format!(
            "no contract wasm: pass --contract-wasm PATH or set {ENV_VAR} \
             (build it with scripts/build-contract.sh)"
        ))),
    }
}

/// Runs `scripts/build-contract.sh`, whose last output line is the wasm's path.
fn build(root: &Path) -> Result<PathBuf, CliError> {
    eprintln!("building the contract wasm with scripts/build-contract.sh ...");
    let output = Command::new(root.join("scripts/build-contract.sh"))
        .current_dir(root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run scripts/build-contract.sh: {e}")))?;
    if !output.status.success() {
        return Err(CliError::Failed(format!(
            "scripts/build-contract.sh failed ({})",
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default().trim();
    let path = root.join(last);
    if path.is_file() {
        Ok(path)
    } else {
        Err(CliError::Failed(format!(
            "scripts/build-contract.sh did not leave a wasm at {}",
            path.display()
        )))
    }
}
