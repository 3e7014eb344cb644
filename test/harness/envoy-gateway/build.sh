#!/usr/bin/env bash
# Builds Envoy Gateway's egctl (github.com/envoyproxy/gateway, its `egctl x translate` is
# the real Gateway-API-to-xDS translator) from the Go module proxy into
# ~/.cache/envoy-sds-server/envoy-gateway/<version>/ and prints the binary's path on the
# last line. test/gateway/envoy-gateway-translate.test.ts runs it.
#
#   test/harness/envoy-gateway/build.sh               build if needed, print the path
#   test/harness/envoy-gateway/build.sh --print-path  print where it is (or would be); build nothing
#
# Idempotent: an existing binary is reused. The version is pinned here and only here;
# EG_VERSION in the environment overrides it. Cold, on the shared 2-core machine, the
# build takes long minutes (Envoy Gateway links go-control-plane, Kubernetes and more).
set -euo pipefail

EG_VERSION="${EG_VERSION:-v1.9.1}"
FALLBACK_TOOLCHAIN="${FALLBACK_TOOLCHAIN:-go1.27.3}"
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/envoy-gateway/${EG_VERSION}"
BIN="$BIN_DIR/egctl"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ ! -x "$BIN" ]]; then
  export PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || { echo '[envoy-gateway build] go is required to build egctl' >&2; exit 1; }
  mkdir -p "$BIN_DIR"
  exec 9>"$BIN_DIR/.build.lock"
  if command -v flock >/dev/null; then flock 9; fi
  if [[ ! -x "$BIN" ]]; then
    echo "[envoy-gateway build] go install github.com/envoyproxy/gateway/cmd/egctl@${EG_VERSION}" >&2
    export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
    GOBIN="$BIN_DIR" go install -trimpath -ldflags='-s -w' "github.com/envoyproxy/gateway/cmd/egctl@${EG_VERSION}" ||
      GOTOOLCHAIN="$FALLBACK_TOOLCHAIN" GOBIN="$BIN_DIR" go install -trimpath -ldflags='-s -w' "github.com/envoyproxy/gateway/cmd/egctl@${EG_VERSION}"
  fi
fi
echo "$BIN"
