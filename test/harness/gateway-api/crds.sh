#!/usr/bin/env bash
# Prints the Gateway API CustomResourceDefinition files of the standard channel
# (sigs.k8s.io/gateway-api config/crd/standard: Gateway, GatewayClass, HTTPRoute,
# ReferenceGrant, BackendTLSPolicy, ...), one path a line, from the Go module proxy
# (go mod download; cached in the Go module cache). test/gateway/ installs them.
set -euo pipefail
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
export PATH="/usr/local/go/bin:$PATH"
export GOFLAGS="-mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
dir="$(cd "${TMPDIR:-/tmp}" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -d "$dir/config/crd/standard" ]] || { echo "[gateway-api crds] sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION not in the module cache" >&2; exit 1; }
ls "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml
