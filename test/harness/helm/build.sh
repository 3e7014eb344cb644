#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v3, cmd/helm) from the Go module proxy for the chart tests and
# prints the binary's path on the last line.
#
#   test/harness/helm/build.sh                 build if needed, print the binary's path
#   test/harness/helm/build.sh --print-path    print where it is (or would be), build nothing
#
# Idempotent: a cached binary is used as is. HELM_BIN in the environment names a helm to
# use instead (nothing is built). The version is pinned here only; HELM_VERSION overrides.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-3.22.0}"
FALLBACK_TOOLCHAIN="${FALLBACK_TOOLCHAIN:-go1.27.3}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/helm"
BIN="$CACHE_ROOT/v${HELM_VERSION}/bin/helm"

log() { printf '[helm build] %s\n' "$*" >&2; }

if [[ -n "${HELM_BIN:-}" && -x "${HELM_BIN}" ]]; then
  printf '%s\n' "$HELM_BIN"
  exit 0
fi
if [[ "${1:-}" == "--print-path" ]]; then
  printf '%s\n' "$BIN"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: $0 [--print-path]" >&2
  exit 2
fi
if [[ -x "$BIN" ]]; then
  log "cached: $BIN"
  printf '%s\n' "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "[helm build] go is not installed" >&2; exit 1; }
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
if command -v flock >/dev/null; then flock 9; fi
if [[ -x "$BIN" ]]; then printf '%s\n' "$BIN"; exit 0; fi # built while we waited

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/helm-build.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# helm reports its version from these variables (otherwise `helm version` says v3.x-dev).
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}"
install_helm() { GOBIN="$STAGE" go install -trimpath "-ldflags=$LDFLAGS" "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}"; }

start=$SECONDS
log "helm.sh/helm/v3 v$HELM_VERSION"
if ! install_helm 2>"$STAGE/go.err"; then
  cat "$STAGE/go.err" >&2
  if [[ "$GOTOOLCHAIN" == local* ]] && grep -qE 'requires go >=|toolchain not available' "$STAGE/go.err"; then
    log "retrying with GOTOOLCHAIN=$FALLBACK_TOOLCHAIN"
    GOTOOLCHAIN="$FALLBACK_TOOLCHAIN" install_helm
  else
    exit 1
  fi
fi
mkdir -p "$(dirname "$BIN")"
mv -f "$STAGE/helm" "$BIN"
log "built in $((SECONDS - start))s"
printf '%s\n' "$BIN"
