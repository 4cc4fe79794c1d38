#!/usr/bin/env bash
# Failover under load, as BENCHMARKS.md reports it: a local network at (5,3) on 200 ms blocks
# (final two blocks behind the head, as on NEAR) with requests at 5/s: latency idle, across a
# SIGKILL of 2 of the 5 nodes, while they are down, and after they are back; then overload at
# (3,2): 1000 requests with 200 in flight. Uses the release binary: build it first with
#   cargo build --release -p chainsig-cli
# Usage: scripts/bench-failover.sh [HOME_DIR]   (default /tmp/chainsig-bench-failover; wiped)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CARGO_TARGET_DIR:-target}/release/chainsig"
HOME_DIR="${1:-/tmp/chainsig-bench-failover}"
RATE=5
[ -x "$BIN" ] || { echo "build first: cargo build --release -p chainsig-cli" >&2; exit 2; }

UP=""
stop_network() {
    [ -n "$UP" ] && { kill -INT "$UP" 2>/dev/null; wait "$UP" 2>/dev/null || true; }
    UP=""
}
trap stop_network EXIT

start_network() { # nodes threshold
    rm -rf "$HOME_DIR"
    LOG="$HOME_DIR.up.log"
    # --no-restart: killed nodes stay down until this script starts them again.
    "$BIN" local up --home "$HOME_DIR" --nodes "$1" --threshold "$2" --block-time 200 \
        --no-restart >"$LOG" 2>&1 &
    UP=$!
    until grep -q '^ready' "$LOG"; do
        kill -0 $UP 2>/dev/null || { cat "$LOG"; exit 1; }
        sleep 1
    done
}

bench() { # requests [rate]
    "$BIN" bench --home "$HOME_DIR" --requests "$1" --rate "${2:-$RATE}" --concurrency 400 \
        --ceiling-signatures 0 | grep -E '^\| (answered|blocks|latency|throughput)'
}

pid_of() { cat "$HOME_DIR/nodes/$1/pid"; }

echo "== (5,3), idle (after 20 s of refill)"
start_network 5 3
sleep 20
bench 100

echo "== SIGKILL of node1 and node2 5 s into 150 requests"
bench 150 > "$HOME_DIR.kill" &
B=$!
sleep 5
kill -KILL "$(pid_of node1)" "$(pid_of node2)"
wait $B; cat "$HOME_DIR.kill"

echo "== while they are down (every request sent after the kill)"
bench 100

echo "== after they are back (restarted by hand, behind the chain by the 100 requests above)"
RESTARTED=()
for n in node1 node2; do
    "$BIN" node --config "$HOME_DIR/nodes/$n/config.toml" >>"$HOME_DIR/nodes/$n/node.log" 2>&1 &
    RESTARTED+=($!)
done
trap 'kill "${RESTARTED[@]}" 2>/dev/null; stop_network' EXIT
for n in node1 node2; do
    url=$(python3 -c "import json,sys; print(next(x['http_url'] for x in json.load(open('$HOME_DIR/local.json'))['nodes'] if x['name']=='$n'))")
    until curl -sf "$url/state" | grep -q '"serving_epoch":[0-9]'; do sleep 0.5; done
done
bench 100

kill "${RESTARTED[@]}" 2>/dev/null || true
stop_network
echo "== (3,2), overload: 1000 requests, 200 in flight, as fast as they go"
start_network 3 2
sleep 20
"$BIN" bench --home "$HOME_DIR" --requests 1000 --concurrency 200 --ceiling-signatures 0 \
    | grep -E '^\| (answered|blocks|latency|throughput)'
