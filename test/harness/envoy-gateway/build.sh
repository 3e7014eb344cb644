#!/usr/bin/env bash
# Builds, from the Go module proxy, into ~/.cache/envoy-sds-server/envoy-gateway/<version>/:
#   egctl          Envoy Gateway's CLI (github.com/envoyproxy/gateway/cmd/egctl);
#   sds-translate  ./translate: the same translator packages as `egctl x translate`, with
#                  SDS Secret references enabled (egctl has them off; see translate/main.go).
# Prints the folder on the last line. test/gateway/envoy-gateway-translate.test.ts runs both.
#
#   test/harness/envoy-gateway/build.sh               build if needed, print the folder
#   test/harness/envoy-gateway/build.sh --print-path  print where it is (or would be); build nothing
#
# Idempotent: an existing binary is reused. The version is pinned here and only here;
# EG_VERSION in the environment overrides it. Cold, on the shared 2-core machine, the
# build takes long minutes (Envoy Gateway links go-control-plane, Kubernetes and more).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The version translate/go.mod pins (EG_VERSION overrides egctl's only).
EG_VERSION="${EG_VERSION:-$(awk '$1 == "require" && $2 == "github.com/envoyproxy/gateway" { print $3; exit } $1 == "github.com/envoyproxy/gateway" { print $2; exit }' "$HERE/translate/go.mod")}"
FALLBACK_TOOLCHAIN="${FALLBACK_TOOLCHAIN:-go1.27.3}"
SOURCES_HASH="$(cd "$HERE/translate" && cat go.mod go.sum main.go | sha256sum | cut -c1-12)"
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/envoy-gateway/${EG_VERSION}"
BIN="$BIN_DIR/egctl"
TRANSLATE="$BIN_DIR/sds-translate-$SOURCES_HASH"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$BIN_DIR"
  exit 0
fi
if [[ ! -x "$BIN" || ! -x "$TRANSLATE" ]]; then
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
  if [[ ! -x "$TRANSLATE" ]]; then
    echo "[envoy-gateway build] sds-translate (translate/, over github.com/envoyproxy/gateway ${EG_VERSION})" >&2
    export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
    (cd "$HERE/translate" && go build -trimpath -ldflags='-s -w' -o "$TRANSLATE.tmp" . ) ||
      (cd "$HERE/translate" && GOTOOLCHAIN="$FALLBACK_TOOLCHAIN" go build -trimpath -ldflags='-s -w' -o "$TRANSLATE.tmp" .)
    mv "$TRANSLATE.tmp" "$TRANSLATE"
    ln -sf "$(basename "$TRANSLATE")" "$BIN_DIR/sds-translate"
  fi
fi
echo "$BIN_DIR"
