//! Where the signer contract's wasm comes from, for everything that deploys it on a devnet
//! (`chainsig local up`, and the tests): `CHAINSIG_CONTRACT_WASM`, else the workspace's wasm32
//! release output, else (when running from the source tree) a fresh build with
//! `scripts/build-contract.sh`.
//!
//! The fresh build goes to its own target directory: a test that builds the wasm runs inside
//! `cargo test`, which holds the lock on the workspace's target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Names a prebuilt wasm; the test script sets it.
pub const ENV_VAR: &str = "CHAINSIG_CONTRACT_WASM";
const RELATIVE_OUTPUT: &str = "wasm32-unknown-unknown/release/chainsig_contract.wasm";

/// The source tree this code was built from, if it is still there.
fn workspace_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("scripts/build-contract.sh")
        .is_file()
        .then_some(root)
}

fn target_dir(root: Option<&Path>) -> Option<PathBuf> {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| root.map(|r| r.join("target")))
}

/// Finds the wasm, building it when there is none and the source tree is here.
pub fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(ENV_VAR) {
        return Ok(PathBuf::from(path));
    }
    let root = workspace_root();
    let target = target_dir(root.as_deref());
    let built = target.iter().flat_map(|t| {
        [
            t.join(RELATIVE_OUTPUT),
            t.join("contract-wasm").join(RELATIVE_OUTPUT),
        ]
    });
    if let Some(found) = built.into_iter().find(|p| p.is_file()) {
        return Ok(found);
    }
    match (root, target) {
        (Some(root), Some(target)) => build(&root, &target.join("contract-wasm")),
        _ => Err(format!(
            "no contract wasm: set {ENV_VAR} (build it with scripts/build-contract.sh)"
        )),
    }
}

/// Reads the wasm at `path` and checks that it is one.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    let code = std::fs::read(path).map_err(|e| format!("contract wasm {}: {e}", path.display()))?;
    if !code.starts_with(b"\0asm") {
        return Err(format!(
            "contract wasm {}: not a wasm module",
            path.display()
        ));
    }
    Ok(code)
}

/// [`locate`] then [`read`].
pub fn load() -> Result<Vec<u8>, String> {
    read(&locate()?)
}

/// Runs `scripts/build-contract.sh` into `target`; its last output line is the wasm's path.
fn build(root: &Path, target: &Path) -> Result<PathBuf, String> {
    eprintln!("building the contract wasm with scripts/build-contract.sh ...");
    let output = Command::new(root.join("scripts/build-contract.sh"))
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        // The wasm flags come from the workspace's .cargo/config.toml; RUSTFLAGS would
        // override them (and drop `--cfg near`).
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/build-contract.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/build-contract.sh failed ({})",
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    let path = if path.is_absolute() {
        path
    } else {
        root.join(path)
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "scripts/build-contract.sh did not leave a wasm at {}",
            path.display()
        ))
    }
}
