#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the contract wasm and its size
# limit, then every test of every crate. The contract build installs the wasm target if it
# is missing, exactly as `chainsig local up` does on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== contract wasm"
scripts/build-contract.sh
# The contract's devnet tests run this very wasm instead of building their own.
# (Absolute: tests run in their crate's directory.)
CHAINSIG_CONTRACT_WASM="$(realpath "${CARGO_TARGET_DIR:-target}")/wasm32-unknown-unknown/contract/chainsig_contract.wasm"
export CHAINSIG_CONTRACT_WASM
# ... and fail, rather than skip, if it is missing.
export CHAINSIG_REQUIRE_CONTRACT_WASM=1

results="$(mktemp)"
trap 'rm -f "$results"' EXIT

echo "== cargo test"
cargo test --workspace 2>&1 | tee "$results"

# A client not written in Rust against the devnet: near-api-js, from npm.
if command -v npm >/dev/null 2>&1; then
    echo "== near-api-js against the devnet"
    crates/devnet/tests/js/run.sh 2>&1 | tee -a "$results"
else
    echo "== skipping the near-api-js test: npm is not installed"
fi

# One total over every runner above.
awk '/^test result:/ { passed += $4; failed += $6 }
     /^# pass /      { passed += $3 }
     /^# fail /      { failed += $3 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$results"
