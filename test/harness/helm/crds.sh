#!/usr/bin/env bash
# Prints the CustomResourceDefinition files the chart's optional objects need, one path a
# line, from the Go module proxy (go mod download; cached in the Go module cache):
#   cert-manager.io Certificate   (tls.source: certManager)
#   monitoring.coreos.com ServiceMonitor   (serviceMonitor.enabled)
# The chart tests dry-run those objects against the real CRDs, not stand-ins.
set -euo pipefail
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
export GOFLAGS="-mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
module_dir() { # module@version -> its directory in the module cache
  local dir
  dir="$(cd "${TMPDIR:-/tmp}" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -d "$dir" ]] || { echo "[helm crds] $1 not in the module cache" >&2; exit 1; }
  printf '%s\n' "$dir"
}
cm="$(module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")"
po="$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")"
printf '%s\n' "$cm/deploy/crds/cert-manager.io_certificates.yaml" \
  "$po/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
