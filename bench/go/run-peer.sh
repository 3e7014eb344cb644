#!/usr/bin/env bash
# Runs the benchmark scenarios against the go-control-plane peer (sds-peer),
# one fresh peer process per scenario, and prints one JSON object per run
# (sds-load -json) on stdout. Progress goes to stderr.
#   SECRETS=10000 CONNS=10 REPS=5 bench/go/run-peer.sh > peer-results.jsonl
# The Node orchestrator does the same against our server; this script is the
# reference for how the binaries are meant to be driven.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$(cd "$here/.." && pwd)/bin"
"$here/build.sh" >&2
SECRETS="${SECRETS:-10000}"
CONNS="${CONNS:-10}"
REPS="${REPS:-5}"
ulimit -n 65536 2>/dev/null || true

peer_pid=""
stop_peer() {
  if [[ -n "$peer_pid" ]]; then
    kill "$peer_pid" 2>/dev/null || true
    wait "$peer_pid" 2>/dev/null || true
    peer_pid=""
  fi
}
trap stop_peer EXIT

start_peer() {
  local out
  out="$(mktemp)"
  "$bin/sds-peer" -secrets "$SECRETS" >"$out" 2>/dev/null &
  peer_pid=$!
  for _ in $(seq 1 100); do
    if grep -q '^CONTROL ' "$out"; then break; fi
    sleep 0.1
  done
  ADDR="$(awk '/^LISTENING /{print $2}' "$out")"
  CTRL="http://$(awk '/^CONTROL /{print $2}' "$out")"
  rm -f "$out"
  [[ -n "$ADDR" ]] || { echo "sds-peer did not start" >&2; exit 1; }
}

scenario() { # label, then sds-load flags
  local label="$1"
  shift
  start_peer
  echo "== $label" >&2
  "$bin/sds-load" -addr "$ADDR" -control "$CTRL" -server-pid "$peer_pid" -json "$@" || true
  stop_peer
}

scenario storm-10k       -scenario storm       -streams 10000 -conns "$CONNS" -names distinct
scenario fanout-1k       -scenario fanout      -streams 1000  -conns "$CONNS" -names single   -reps "$REPS"
scenario fanout-10k      -scenario fanout      -streams 10000 -conns "$CONNS" -names single   -reps "$REPS"
scenario rotate-all-10k  -scenario rotate-all  -streams 10000 -conns "$CONNS" -names distinct -reps "$REPS"
scenario idle-memory-10k -scenario idle-memory -streams 10000 -conns "$CONNS" -names distinct
