#!/usr/bin/env bash
# The Dockerfile's steps without a Docker engine, for CI: build with dev dependencies,
# install production dependencies alone, assemble the image's /app, then run it the way
# the image runs (read-only files, a non-root user, a data dir as the only writable place):
# `envoy-sds --help`, then a short `serve` with a config, checked by /healthz, /readyz and
# `envoy-sds fetch`, and a SIGTERM that must end it cleanly.
#   scripts/check-image-steps.sh            uses the machine's node (the image has node 24)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/envoy-sds-image.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '[image] %s\n' "$*" >&2; }
fail() { printf '[image] FAILED: %s\n' "$*" >&2; exit 1; }

step "node $(node --version) (the image uses node:24-slim); work dir $work"

# --- build stage: npm ci, tsc over src/ only ------------------------------------------
mkdir -p "$work/build"
cp "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$work/build/"
cp -r "$repo/src" "$repo/proto" "$work/build/"
(cd "$work/build" && npm ci --no-audit --no-fund --prefer-offline >/dev/null)
step "build: tsc"
(cd "$work/build" && npx tsc -p tsconfig.json)

# --- prod-deps stage and the final image's /app -----------------------------------------
mkdir -p "$work/app"
cp "$repo/package.json" "$repo/package-lock.json" "$work/app/"
(cd "$work/app" && npm ci --omit=dev --no-audit --no-fund --prefer-offline >/dev/null)
rm "$work/app/package-lock.json"
mkdir -p "$work/app/dist"
cp -r "$work/build/dist/src" "$work/app/dist/src"
cp -r "$repo/proto" "$repo/envoy-config" "$work/app/"
if [[ -d "$work/app/node_modules/typescript" ]]; then fail "a dev dependency (typescript) is in the production install"; fi
step "app: $(du -sh "$work/app" | cut -f1), $(ls "$work/app/node_modules" | wc -l) top-level packages"

# --- run it as the image would ----------------------------------------------------------
data="$work/data"
mkdir -p "$data"
chmod -R a-w "$work/app"            # read-only root filesystem
run_as=()
if [[ "$(id -u)" == 0 ]] && command -v setpriv >/dev/null; then
  chown -R 65534:65534 "$data"      # like USER node: only the data dir is writable
  chmod o+x "$work"
  run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
cli() { (cd "$work/app" && NODE_ENV=production ENVOY_SDS_DATA="$data" "${run_as[@]}" node dist/src/cli.js "$@"); }

step "envoy-sds --help"
cli --help | grep -q 'Usage:' || fail "--help printed no usage"

# A certificate to serve, from files, to loopback callers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=image-check.example -addext subjectAltName=DNS:image-check.example \
  -keyout "$data/tls.key" -out "$data/tls.crt" 2>/dev/null
ports="$(node -e '
  const net = require("net"); const a = net.createServer().listen(0, "127.0.0.1"), b = net.createServer().listen(0, "127.0.0.1");
  setTimeout(() => { console.log(a.address().port, b.address().port); a.close(); b.close(); }, 50);')"
read -r grpc_port http_port <<<"$ports"
cat >"$data/config.yaml" <<YAML
dataDir: $data
grpc: { tcp: { address: 127.0.0.1:$grpc_port } }
http: { address: 127.0.0.1:$http_port }
secrets:
  - name: web
    tlsCertificate: { certificateChainFile: $data/tls.crt, privateKeyFile: $data/tls.key }
authorization:
  rules: [{ identities: [loopback], names: ["*"] }]
drainSeconds: 2
YAML
[[ -n "${run_as[*]}" ]] && chown -R 65534:65534 "$data"

step "envoy-sds serve (grpc :$grpc_port, http :$http_port)"
# exec: the signal below must reach node itself, not a subshell.
(cd "$work/app" && exec env NODE_ENV=production "${run_as[@]}" node dist/src/cli.js serve --config "$data/config.yaml" >"$work/serve.log" 2>&1) &
server_pid=$!
ready=""
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n "$ready" ]] || { cat "$work/serve.log" >&2; fail "server not ready"; }
curl -fsS "http://127.0.0.1:$http_port/healthz" | grep -q ok || fail "/healthz"
cli fetch web --server "127.0.0.1:$grpc_port" --timeout 10 | grep -q 'image-check.example' || fail "fetch did not return the certificate"
step "SIGTERM"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
[[ "$status" == 0 ]] || { cat "$work/serve.log" >&2; fail "serve exited with $status after SIGTERM"; }
server_pid=""
grep -q '"stopped"' "$work/serve.log" || grep -q 'stopped' "$work/serve.log" || fail "no clean stop in the log"
if grep -qi 'BEGIN .*PRIVATE KEY' "$work/serve.log"; then fail "a private key reached the log"; fi
step "ok: production install runs --help, serve, fetch and a clean stop"
