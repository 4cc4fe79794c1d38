#!/usr/bin/env bash
# Membership changes under load, as BENCHMARKS.md reports them: a local network at (5,3) on
# 200 ms blocks with requests at 5/s, latency idle, during a join, during a leave, and during a
# leave with one of the remaining members killed (the reshare cannot finish; the contract
# cancels it after its attempts). Uses the release binary: build it first with
#   cargo build --release -p chainsig-cli
# Usage: scripts/bench-reshare.sh [HOME_DIR]   (default /tmp/chainsig-bench-reshare; wiped)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CARGO_TARGET_DIR:-target}/release/chainsig"
HOME_DIR="${1:-/tmp/chainsig-bench-reshare}"
RATE=5
[ -x "$BIN" ] || { echo "build first: cargo build --release -p chainsig-cli" >&2; exit 2; }
rm -rf "$HOME_DIR"
LOG="$HOME_DIR.up.log"

"$BIN" local up --home "$HOME_DIR" --nodes 5 --threshold 3 --block-time 200 >"$LOG" 2>&1 &
UP=$!
trap 'kill -INT $UP 2>/dev/null; wait $UP 2>/dev/null || true' EXIT
until grep -q '^ready' "$LOG"; do
    kill -0 $UP 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 1
done

bench() { # requests
    "$BIN" bench --home "$HOME_DIR" --requests "$1" --rate $RATE --concurrency 400 \
        --ceiling-signatures 0 | grep -E '^\| (answered|blocks|latency|throughput)'
}

echo "== idle (after 20 s of refill)"
sleep 20
bench 100

echo "== a join under load (add-node 5 s into 150 requests)"
bench 150 > "$HOME_DIR.join" &
B=$!
sleep 5
"$BIN" local add-node --home "$HOME_DIR" | grep -E 'ended|again|participant'
wait $B; cat "$HOME_DIR.join"
sleep 20

echo "== a leave under load (remove-node 5 s into 150 requests)"
bench 150 > "$HOME_DIR.leave" &
B=$!
sleep 5
"$BIN" local remove-node node0 --home "$HOME_DIR" | grep -E 'ended|again|left'
wait $B; cat "$HOME_DIR.leave"
sleep 20

echo "== a leave with a remaining member killed (the reshare cannot finish)"
bench 250 > "$HOME_DIR.stuck" &
B=$!
sleep 5
victim=$(cat "$HOME_DIR/nodes/node2/pid")
kill -KILL "$victim"
start=$(date +%s)
"$BIN" local remove-node node1 --home "$HOME_DIR" --timeout 200 2>&1 | grep -E 'ended|cancelled|left' || true
echo "back to Running after $(( $(date +%s) - start )) s"
wait $B || true; cat "$HOME_DIR.stuck"
