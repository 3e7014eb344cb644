#!/usr/bin/env bash
# Builds zlint (github.com/zmap/zlint/v3, the X.509 linter CAs run before issuing) from
# the Go module proxy into ~/.cache/envoy-sds-server/zlint/<version>/ and prints the
# binary's path on the last line.
#
#   test/harness/zlint/build.sh               build if needed, print the binary's path
#   test/harness/zlint/build.sh --print-path  print where it is (or would be); build nothing
#
# Idempotent: an existing binary is reused. The version is pinned here and only here
# (test/issuance/zlint.test.ts asks this script); ZLINT_VERSION in the environment overrides it.
set -euo pipefail

ZLINT_VERSION="${ZLINT_VERSION:-v3.7.3}"
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/zlint/${ZLINT_VERSION}"
BIN="$BIN_DIR/zlint"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ ! -x "$BIN" ]]; then
  export PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || { echo '[zlint build] go is required to build zlint' >&2; exit 1; }
  echo "[zlint build] go install github.com/zmap/zlint/v3/cmd/zlint@${ZLINT_VERSION}" >&2
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false go install "github.com/zmap/zlint/v3/cmd/zlint@${ZLINT_VERSION}"
fi
echo "$BIN"
