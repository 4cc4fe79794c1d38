#!/usr/bin/env bash
# Builds the signer contract to wasm and fails if it outgrows the size budget.
# Installs the wasm32-unknown-unknown target first when rustup manages the toolchain and the
# target is missing (a fresh machine): this is the one place that does it, for `local up`,
# the test command and CI alike.
# Prints the path of the wasm on its last line. Exit code 3: the wasm target is missing and
# could not be installed (the last line on stderr is the command that fixes it).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
MAX_BYTES=$((400 * 1000))

# `rustc --print sysroot` names the toolchain cargo will use here, whichever way it was picked
# (default, override, RUSTUP_TOOLCHAIN); its target library tells whether the target is there.
sysroot="$(rustc --print sysroot)"
if [ ! -d "$sysroot/lib/rustlib/$TARGET/lib" ]; then
    if command -v rustup >/dev/null 2>&1; then
        echo "installing the $TARGET target (rustup target add $TARGET), needed once to build the contract" >&2
        if ! rustup target add "$TARGET" >&2; then
            echo "error: could not install the $TARGET target; fix: rustup target add $TARGET" >&2
            exit 3
        fi
    else
        echo "error: the $TARGET target is not installed for $sysroot and rustup is not here to add it;" >&2
        echo "fix: install the Rust standard library for $TARGET (with rustup: rustup target add $TARGET)" >&2
        exit 3
    fi
fi

cargo build -p chainsig-contract --target "$TARGET" --profile contract
target_dir="${CARGO_TARGET_DIR:-target}"
wasm="$target_dir/$TARGET/contract/chainsig_contract.wasm"
size=$(stat -c %s "$wasm")
echo "contract wasm: $size bytes (limit $MAX_BYTES)" >&2
if [ "$size" -gt "$MAX_BYTES" ]; then
    echo "error: the contract wasm is $size bytes, over the $MAX_BYTES-byte limit" >&2
    exit 1
fi
echo "$wasm"
