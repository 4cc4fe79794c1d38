#!/usr/bin/env bash
# near-api-js against the devnet: builds the devnet binary, installs near-api-js, runs the test.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../../../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build -p chainsig-devnet --bin chainsig-devnet)
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
DEVNET_BIN="$target/debug/chainsig-devnet" node --test
