#!/usr/bin/env bash
# Builds the signer contract to wasm and fails if it outgrows the size budget.
# Prints the path of the wasm on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_BYTES=$((400 * 1000))
cargo build -p chainsig-contract --target wasm32-unknown-unknown --release
target_dir="${CARGO_TARGET_DIR:-target}"
wasm="$target_dir/wasm32-unknown-unknown/release/chainsig_contract.wasm"
size=$(stat -c %s "$wasm")
echo "contract wasm: $size bytes (limit $MAX_BYTES)"
if [ "$size" -gt "$MAX_BYTES" ]; then
    echo "error: the contract wasm is $size bytes, over the $MAX_BYTES-byte limit" >&2
    exit 1
fi
echo "$wasm"
