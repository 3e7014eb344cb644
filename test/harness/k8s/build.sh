#!/usr/bin/env bash
# Builds the binaries of the Kubernetes test harness (kube-apiserver, kubectl, etcd) from
# the Go module proxy and prints the folder that holds them on the last line.
#
#   test/harness/k8s/build.sh                  build if needed, print the bin dir
#   test/harness/k8s/build.sh --print-bin-dir  print where the bin dir is (or would be),
#                                               build nothing, touch no network
#
# Idempotent: when the cache already holds all three binaries nothing is built. When
# KUBEBUILDER_ASSETS names a folder with kube-apiserver and etcd (kubectl optional), that
# folder is used instead and nothing is built.
#
# Versions are pinned here, and only here (test/harness/kube-cluster.ts asks this script
# for the bin dir). K8S_VERSION / ETCD_VERSION in the environment override them.
# - k8s.io/kubernetes: the newest v1.37.x on the module proxy.
# - etcd: the newest v3.6.x of go.etcd.io/etcd/server/v3.
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at
# v0.0.0, which no proxy serves; like any project that depends on it, the throwaway build
# module replaces each of them with the published v0.<minor>.<patch>.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
# Toolchain go may fetch from the proxy when a module needs a newer Go than the machine's.
FALLBACK_TOOLCHAIN="${FALLBACK_TOOLCHAIN:-go1.27.3}"

CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/k8s"
OUT_DIR="$CACHE_ROOT/${K8S_VERSION}-etcd${ETCD_VERSION}"
BIN_DIR="$OUT_DIR/bin"

log() { printf '[k8s build] %s\n' "$*" >&2; }

have_all() { # dir, binaries...
  local dir="$1"; shift
  local b
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_all "$KUBEBUILDER_ASSETS" kube-apiserver etcd; then
  [[ "${1:-}" == "--print-bin-dir" ]] || log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  printf '%s\n' "$KUBEBUILDER_ASSETS"
  exit 0
fi

if [[ "${1:-}" == "--print-bin-dir" ]]; then
  printf '%s\n' "$BIN_DIR"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "usage: $0 [--print-bin-dir]" >&2
  exit 2
fi

if have_all "$BIN_DIR" kube-apiserver kubectl etcd; then
  log "cached: $BIN_DIR"
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null || { echo "[k8s build] go is not installed" >&2; exit 1; }
mkdir -p "$CACHE_ROOT"

# One build at a time per cache (parallel CI jobs, two shells).
exec 9>"$CACHE_ROOT/.build.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if have_all "$BIN_DIR" kube-apiserver kubectl etcd; then # built while we waited
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/k8s-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/bin"
mkdir -p "$STAGE"

export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
GO_BUILD=(go build -trimpath -ldflags='-s -w')

# Runs a go command (its stdout passes through); when it fails because a module needs a
# newer Go than the machine's, runs it again with the approved toolchain from the proxy.
go_retry() {
  local err="$WORK/go.err" rc=0
  "$@" 2>"$err" || rc=$?
  cat "$err" >&2
  if [[ $rc -ne 0 && "$GOTOOLCHAIN" == local* ]] &&
     grep -qE 'requires go >=|toolchain not available' "$err"; then
    log "retrying with GOTOOLCHAIN=$FALLBACK_TOOLCHAIN"
    GOTOOLCHAIN="$FALLBACK_TOOLCHAIN" "$@"
    return
  fi
  return $rc
}

start=$SECONDS

# --- etcd: its own module, so that Kubernetes' newer etcd client libraries do not leak in.
log "etcd v$ETCD_VERSION"
mkdir -p "$WORK/etcd"
cat >"$WORK/etcd/go.mod" <<GOMOD
module envoy-sds-server/k8s-harness/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
GOMOD
(cd "$WORK/etcd" && go_retry go mod download go.etcd.io/etcd/server/v3 &&
  go_retry "${GO_BUILD[@]}" -o "$STAGE/etcd" go.etcd.io/etcd/server/v3)
log "etcd built at $((SECONDS - start))s"

# --- kube-apiserver and kubectl from k8s.io/kubernetes.
log "k8s.io/kubernetes v$K8S_VERSION"
mkdir -p "$WORK/k8s"
cd "$WORK/k8s"
STAGING_VERSION="v0.${K8S_VERSION#*.}" # v1.37.2 -> v0.37.2
cat >go.mod <<GOMOD
module envoy-sds-server/k8s-harness/kubernetes

go 1.26.0

require k8s.io/kubernetes v$K8S_VERSION
GOMOD
go_retry go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >"$WORK/k8s.json"
K8S_GOMOD="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' "$WORK/k8s.json")"
[[ -f "$K8S_GOMOD" ]] || { echo "[k8s build] go.mod of k8s.io/kubernetes not found" >&2; exit 1; }
# Every k8s.io module that k8s.io/kubernetes requires at v0.0.0 is a staging module.
mapfile -t STAGING < <(grep -oE '^[[:space:]]+k8s\.io/[A-Za-z0-9._/-]+ v0\.0\.0$' "$K8S_GOMOD" | awk '{print $1}')
[[ ${#STAGING[@]} -gt 0 ]] || { echo "[k8s build] no staging modules found in $K8S_GOMOD" >&2; exit 1; }
{
  echo
  echo "replace ("
  for m in "${STAGING[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
  echo ")"
} >>go.mod
log "replaced ${#STAGING[@]} staging modules with $STAGING_VERSION"
# Stamp the version as hack/lib/version.sh does; otherwise /version and `kubectl version`
# say v0.0.0-master and kubectl warns about version skew.
MINOR="${K8S_VERSION#*.}"; MINOR="${MINOR%%.*}"
K8S_LDFLAGS="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR"
  K8S_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
K8S_BUILD=(go build -trimpath "-ldflags=$K8S_LDFLAGS")
go_retry "${K8S_BUILD[@]}" -o "$STAGE/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
log "kube-apiserver built at $((SECONDS - start))s"
go_retry "${K8S_BUILD[@]}" -o "$STAGE/kubectl" k8s.io/kubernetes/cmd/kubectl
log "kubectl built at $((SECONDS - start))s"

mkdir -p "$BIN_DIR"
for b in etcd kube-apiserver kubectl; do mv -f "$STAGE/$b" "$BIN_DIR/$b"; done
log "built in $((SECONDS - start))s"
printf '%s\n' "$BIN_DIR"
