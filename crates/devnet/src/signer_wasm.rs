//! Where the signer contract's wasm comes from, for everything that deploys it on a devnet
//! (`chainsig local up`, and the tests): `CHAINSIG_CONTRACT_WASM`, else (when running from the
//! source tree) a build with `scripts/build-contract.sh`, which also installs the wasm target
//! on a machine that lacks it, else a wasm built earlier.
//!
//! The fresh build goes to its own target directory: a test that builds the wasm runs inside
//! `cargo test`, which holds the lock on the workspace's target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Names a prebuilt wasm; the test script sets it.
pub const ENV_VAR: &str = "CHAINSIG_CONTRACT_WASM";
const RELATIVE_OUTPUT: &str = "wasm32-unknown-unknown/contract/chainsig_contract.wasm";

/// The source tree this code was built from, if it is still there.
fn workspace_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .ok()?;
    root.join("scripts/build-contract.sh")
        .is_file()
        .then_some(root)
}

fn target_dir(root: Option<&Path>) -> Option<PathBuf> {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| root.map(|r| r.join("target")))
}

/// Finds the wasm: `CHAINSIG_CONTRACT_WASM`; else, from the source tree, a build (cargo's
/// own up-to-date check makes a repeated one take a second, and a wasm older than the
/// contract's source is never used); else a wasm built earlier in the target directory.
pub fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(ENV_VAR) {
        return Ok(PathBuf::from(path));
    }
    let root = workspace_root();
    let target = target_dir(root.as_deref());
    if let (Some(root), Some(target)) = (&root, &target) {
        return build(root, &target.join("contract-wasm"));
    }
    let built = target.iter().flat_map(|t| {
        [
            t.join(RELATIVE_OUTPUT),
            t.join("contract-wasm").join(RELATIVE_OUTPUT),
        ]
    });
    built.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        format!("no contract wasm: set {ENV_VAR} (build it with scripts/build-contract.sh)")
    })
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

/// The exit code with which `scripts/build-contract.sh` says the wasm target is missing and
/// could not be installed.
const NO_TARGET_EXIT: i32 = 3;

/// Runs `scripts/build-contract.sh` into `target`; its last output line is the wasm's path.
/// Says what it does before (a first build takes a while) and how long it took after; a
/// failure ends with the command that fixes it.
fn build(root: &Path, target: &Path) -> Result<PathBuf, String> {
    eprintln!(
        "building the contract wasm (first run only: about a minute; installs the \
         wasm32-unknown-unknown target if it is missing) ..."
    );
    let started = std::time::Instant::now();
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
    if output.status.code() == Some(NO_TARGET_EXIT) {
        return Err(
            "the contract wasm cannot be built: the wasm32-unknown-unknown target is missing; \
             fix: rustup target add wasm32-unknown-unknown"
                .into(),
        );
    }
    if !output.status.success() {
        return Err(format!(
            "building the contract wasm failed ({}); see cargo's output above, rerun it with \
             `{}`, or pass a built wasm with --contract-wasm PATH",
            output.status,
            root.join("scripts/build-contract.sh").display()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    let path = if path.is_absolute() {
        path
    } else {
        root.join(path)
    };
    if !path.is_file() {
        return Err(format!(
            "scripts/build-contract.sh did not leave a wasm at {}",
            path.display()
        ));
    }
    eprintln!(
        "contract wasm built in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(path)
}
