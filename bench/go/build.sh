#!/usr/bin/env bash
# Builds the Go side of the benchmark into bench/bin/:
#   sds-peer  go-control-plane SDS server (the reference we compare against)
#   sds-load  the load client used against both servers
# Idempotent; a no-op rebuild takes about a second thanks to Go's build cache.
# Needs Go >= 1.26 and the Go module proxy (first build downloads modules).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$(cd "$here/.." && pwd)/bin"
mkdir -p "$bin"
cd "$here"
export GOFLAGS="${GOFLAGS:-} -mod=readonly -trimpath"
go build -o "$bin/sds-peer" ./peer
go build -o "$bin/sds-load" ./load
echo "built $bin/sds-peer $bin/sds-load"
