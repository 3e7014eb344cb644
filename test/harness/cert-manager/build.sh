#!/usr/bin/env bash
# Builds the cert-manager side of the Kubernetes test harness from the Go module proxy and
# prints the folder that holds it on the last line:
#   bin/cert-manager-controller   our main (controller/) over cert-manager's pkg/controller
#   bin/trust-manager             trust-manager's own cmd/trust-manager
#   crds/cert-manager/*.yaml      deploy/crds of github.com/cert-manager/cert-manager
#   crds/trust-manager/*.yaml     deploy/crds of github.com/cert-manager/trust-manager
#
#   test/harness/cert-manager/build.sh                  build if needed, print the dir
#   test/harness/cert-manager/build.sh --print-bin-dir  print where it is (or would be),
#                                                       build nothing, touch no network
#
# Idempotent and cached like test/harness/k8s/build.sh: under ~/.cache/envoy-sds-server,
# in a folder named after the versions and a hash of the harness sources here (go.mod,
# go.sum, main), so an edit to them builds anew. Versions are pinned by go.mod (cert-manager
# v1.21.2 in ./go.mod, trust-manager v0.25.0 in ./trust-manager/go.mod); each brings its
# own k8s.io versions (0.36.x and 0.37.x), so they are two modules, not one.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CM_MODULE=github.com/cert-manager/cert-manager
TM_MODULE=github.com/cert-manager/trust-manager
FALLBACK_TOOLCHAIN="${FALLBACK_TOOLCHAIN:-go1.27.3}"

version_of() { # go.mod, module
  awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}
CM_VERSION="$(version_of "$HERE/go.mod" "$CM_MODULE")"
TM_VERSION="$(version_of "$HERE/trust-manager/go.mod" "$TM_MODULE")"
[[ -n "$CM_VERSION" && -n "$TM_VERSION" ]] || { echo "[cert-manager build] versions not found in go.mod" >&2; exit 1; }
SOURCES_HASH="$(cd "$HERE" && cat go.mod go.sum controller/*.go trust-manager/go.mod trust-manager/go.sum trust-manager/*.go | sha256sum | cut -c1-12)"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/cert-manager"
OUT_DIR="$CACHE_ROOT/cm${CM_VERSION#v}-tm${TM_VERSION#v}-$SOURCES_HASH"

log() { printf '[cert-manager build] %s\n' "$*" >&2; }

complete() {
  [[ -x "$OUT_DIR/bin/cert-manager-controller" && -x "$OUT_DIR/bin/trust-manager" ]] &&
    compgen -G "$OUT_DIR/crds/cert-manager/*.yaml" >/dev/null &&
    compgen -G "$OUT_DIR/crds/trust-manager/*.yaml" >/dev/null
}

if [[ "${1:-}" == "--print-bin-dir" ]]; then
  printf '%s\n' "$OUT_DIR"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: $0 [--print-bin-dir]" >&2
  exit 2
fi
if complete; then
  log "cached: $OUT_DIR"
  printf '%s\n' "$OUT_DIR"
  exit 0
fi

command -v go >/dev/null || { echo "[cert-manager build] go is not installed" >&2; exit 1; }
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
if command -v flock >/dev/null; then flock 9; fi
if complete; then # built while we waited
  printf '%s\n' "$OUT_DIR"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cert-manager-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/crds/cert-manager" "$WORK/crds/trust-manager"

export CGO_ENABLED=0
# go.mod and go.sum are committed: the build takes them as they are.
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
GO_BUILD=(go build -trimpath -ldflags='-s -w')

# Runs a go command; when it fails because a module needs a newer Go than the machine's,
# runs it again with the approved toolchain from the proxy (as test/harness/k8s/build.sh).
go_retry() {
  local err="$WORK/go.err" rc=0
  "$@" 2>"$err" || rc=$?
  cat "$err" >&2
  if [[ $rc -ne 0 && "$GOTOOLCHAIN" == local* ]] && grep -qE 'requires go >=|toolchain not available' "$err"; then
    log "retrying with GOTOOLCHAIN=$FALLBACK_TOOLCHAIN"
    GOTOOLCHAIN="$FALLBACK_TOOLCHAIN" "$@"
    return
  fi
  return $rc
}

module_dir() { # module@version: where the module cache unpacked it
  go_retry go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

start=$SECONDS
log "cert-manager $CM_VERSION"
(cd "$HERE" && go_retry "${GO_BUILD[@]}" -o "$WORK/bin/cert-manager-controller" ./controller)
cp "$(cd "$HERE" && module_dir "$CM_MODULE@$CM_VERSION")"/deploy/crds/*.yaml "$WORK/crds/cert-manager/"
log "cert-manager-controller built at $((SECONDS - start))s"

log "trust-manager $TM_VERSION"
(cd "$HERE/trust-manager" && go_retry "${GO_BUILD[@]}" -o "$WORK/bin/trust-manager" "$TM_MODULE/cmd/trust-manager")
cp "$(cd "$HERE/trust-manager" && module_dir "$TM_MODULE@$TM_VERSION")"/deploy/crds/*.yaml "$WORK/crds/trust-manager/"
log "trust-manager built at $((SECONDS - start))s"

chmod -R u+w "$WORK/crds"
mkdir -p "$OUT_DIR"
rm -rf "$OUT_DIR/bin" "$OUT_DIR/crds"
mv "$WORK/bin" "$WORK/crds" "$OUT_DIR/"
log "built in $((SECONDS - start))s"
printf '%s\n' "$OUT_DIR"
