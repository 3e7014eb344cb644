// Production rules on the bootstraps we ship (test/support/envoy-hardening-check.ts): every
// file passes every rule, and each rule has a case proving it catches what it is for.

import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { checkHardening, HARDENING_RULES, type HardeningRule } from '../support/envoy-hardening-check.js';
import { checkBootstrapConsistency, checkEnvoyJson } from '../support/envoy-config-check.js';

const CONFIG_DIR = fileURLToPath(new URL('../../../envoy-config/', import.meta.url));
const FILES = readdirSync(CONFIG_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

type Node = Record<string, unknown>;

const text = (file: string): string => readFileSync(`${CONFIG_DIR}${file}`, 'utf8');
const load = (file: string): Node => parseYaml(text(file)) as Node;

/** The object at `path` below `v` (keys and list indexes); the test fails when it is absent. */
function at(v: unknown, ...path: Array<string | number>): Node {
  let cur: unknown = v;
  for (const k of path) {
    assert.ok(typeof cur === 'object' && cur !== null, `nothing at ${path.join('.')}`);
    cur = (cur as Record<string | number, unknown>)[k];
  }
  assert.ok(typeof cur === 'object' && cur !== null, `nothing at ${path.join('.')}`);
  return cur as Node;
}
const items = (v: unknown, ...path: Array<string | number>): Node[] => at(v, ...path) as unknown as Node[];

/** Asserts a problem of `rule` at `path` (exactly, or starting with it when it ends with '*'). */
function assertRule(problems: string[], rule: HardeningRule, path: string): void {
  const hit = problems.some((p) => {
    const [at, r] = p.split(': ');
    return r === rule && (path.endsWith('*') ? (at ?? '').startsWith(path.slice(0, -1)) : at === path);
  });
  assert.ok(hit, `expected ${rule} at ${path}; got:\n  ${problems.join('\n  ')}`);
}

const HTTPS = 'static_resources.listeners[0]';
const HCM = `${HTTPS}.filter_chains[0].filters[0].typed_config`;
const listener = (b: Node, i = 0): Node => at(b, 'static_resources', 'listeners', i);
const hcm = (b: Node, l = 0, c = 0): Node => at(listener(b, l), 'filter_chains', c, 'filters', 0, 'typed_config');
const cluster = (b: Node, name: string): Node => {
  const c = items(b, 'static_resources', 'clusters').find((x) => x['name'] === name);
  assert.ok(c, `cluster ${name}`);
  return c;
};
const tlsCommon = (b: Node): Node => at(listener(b), 'filter_chains', 0, 'transport_socket', 'typed_config', 'common_tls_context');
const google = (b: Node): Node =>
  at(tlsCommon(b), 'tls_certificate_sds_secret_configs', 0, 'sds_config', 'api_config_source', 'grpc_services', 0, 'google_grpc');
const h2Options = (c: Node): Node =>
  at(c, 'typed_extension_protocol_options', 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions', 'explicit_http_config');

describe('envoy-config/*.yaml: production rules', () => {
  for (const file of FILES) {
    it(`${file} passes every rule (${HARDENING_RULES.length})`, () => {
      assert.deepEqual(checkHardening(load(file), text(file)), []);
    });
  }

  it('the rules apply to what the files hold (edge listeners, SDS clusters, a google_grpc channel)', () => {
    const edge = FILES.filter((f) =>
      items(load(f), 'static_resources', 'listeners').some((l) => at(l, 'address', 'socket_address')['address'] === '0.0.0.0'),
    );
    assert.deepEqual(edge, FILES, 'every shipped gateway listens on every interface');
    assert.ok(google(load('gateway-kubernetes.yaml'))['channel_args'], 'gateway-kubernetes.yaml has a google_grpc channel with args');
  });
});

describe('each rule catches its mistake', () => {
  it('sds-keepalive: an envoy_grpc SDS cluster without HTTP/2 keepalive', () => {
    const b = load('gateway-tcp.yaml');
    h2Options(cluster(b, 'sds-server'))['http2_protocol_options'] = {};
    assertRule(checkHardening(b), 'sds-keepalive', 'static_resources.clusters[0]');
  });

  it('sds-keepalive: a google_grpc SDS channel without keepalive, or that stops pinging idle streams', () => {
    const where = `${HTTPS}.filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.api_config_source.grpc_services[0].google_grpc.channel_args`;
    const none = load('gateway-kubernetes.yaml');
    delete google(none)['channel_args'];
    assertRule(checkHardening(none), 'sds-keepalive', where);
    const capped = load('gateway-kubernetes.yaml');
    delete at(google(capped), 'channel_args', 'args')['grpc.http2.max_pings_without_data'];
    const p = checkHardening(capped);
    assertRule(p, 'sds-keepalive', where);
    assert.ok(p.some((x) => x.includes('max_pings_without_data')));
  });

  it('sds-circuit-breakers: a per-name SDS cluster at the default 1024 requests (acme-http01.yaml had it)', () => {
    const b = load('acme-http01.yaml');
    delete cluster(b, 'sds-server')['circuit_breakers'];
    assertRule(checkHardening(b), 'sds-circuit-breakers', 'static_resources.clusters[1]');
    const low = load('gateway-tcp.yaml');
    at(cluster(low, 'sds-server'), 'circuit_breakers', 'thresholds', 0)['max_requests'] = 1024;
    assertRule(checkHardening(low), 'sds-circuit-breakers', 'static_resources.clusters[0]');
    // ADS is one stream: no limit needed there.
    assert.deepEqual(
      checkHardening(load('gateway-ads.yaml')).filter((p) => p.includes('sds-circuit-breakers')),
      [],
    );
  });

  it('edge-request-headers-timeout, edge-idle-timeouts, edge-use-remote-address on a 0.0.0.0 listener', () => {
    const b = load('gateway-tcp.yaml');
    for (const k of ['request_headers_timeout', 'stream_idle_timeout', 'common_http_protocol_options', 'use_remote_address'])
      delete hcm(b)[k];
    const p = checkHardening(b);
    assertRule(p, 'edge-request-headers-timeout', `${HCM}.request_headers_timeout`);
    assertRule(p, 'edge-idle-timeouts', `${HCM}.stream_idle_timeout`);
    assertRule(p, 'edge-idle-timeouts', `${HCM}.common_http_protocol_options.idle_timeout`);
    assertRule(p, 'edge-use-remote-address', `${HCM}.use_remote_address`);
    // A zero timeout disables it: as bad as none.
    const zero = load('gateway-tcp.yaml');
    hcm(zero)['request_headers_timeout'] = '0s';
    assertRule(checkHardening(zero), 'edge-request-headers-timeout', `${HCM}.request_headers_timeout`);
  });

  it('edge rules do not apply to a loopback listener', () => {
    const b = load('gateway-tcp.yaml');
    at(listener(b), 'address', 'socket_address')['address'] = '127.0.0.1';
    for (const k of ['request_headers_timeout', 'use_remote_address']) delete hcm(b)[k];
    delete listener(b)['per_connection_buffer_limit_bytes'];
    assert.deepEqual(checkHardening(b), []);
  });

  it('edge-buffer-limit: none, or above 64 KiB', () => {
    const b = load('acme-http01.yaml');
    delete listener(b)['per_connection_buffer_limit_bytes'];
    assertRule(checkHardening(b), 'edge-buffer-limit', HTTPS);
    listener(b)['per_connection_buffer_limit_bytes'] = 1048576;
    assertRule(checkHardening(b), 'edge-buffer-limit', HTTPS);
  });

  it('downstream-alpn: a TLS listener without ALPN, or without h2 for an AUTO codec', () => {
    const b = load('reencrypt-upstream.yaml');
    const common = tlsCommon(b);
    delete common['alpn_protocols'];
    const where = `${HTTPS}.filter_chains[0].transport_socket.typed_config.common_tls_context.alpn_protocols`;
    assertRule(checkHardening(b), 'downstream-alpn', where);
    common['alpn_protocols'] = ['http/1.1'];
    assertRule(checkHardening(b), 'downstream-alpn', where);
    hcm(b)['codec_type'] = 'HTTP1';
    assert.deepEqual(checkHardening(b), []);
  });

  it('readiness-proves-certificate: /ready answered by the plaintext listener itself (the old gateway-kubernetes.yaml)', () => {
    const b = load('gateway-kubernetes.yaml');
    const health = items(b, 'static_resources', 'listeners').findIndex((l) => l['name'] === 'health');
    const route = at(hcm(b, health), 'route_config', 'virtual_hosts', 0, 'routes', 0);
    delete route['route'];
    route['direct_response'] = { status: 200, body: { inline_string: 'ok\n' } };
    const where = `static_resources.listeners[${health}].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0]`;
    assertRule(checkHardening(b), 'readiness-proves-certificate', where);
    // Routed, but to a cluster without TLS, or to another port: still proves nothing.
    const plain = load('gateway-kubernetes.yaml');
    delete cluster(plain, 'https-self')['transport_socket'];
    assertRule(checkHardening(plain), 'readiness-proves-certificate', where);
    const elsewhere = load('gateway-kubernetes.yaml');
    at(cluster(elsewhere, 'https-self'), 'load_assignment', 'endpoints', 0, 'lb_endpoints', 0, 'endpoint', 'address', 'socket_address')[
      'port_value'
    ] = 8081;
    assertRule(checkHardening(elsewhere), 'readiness-proves-certificate', where);
  });

  it('comment-bind-address: a comment naming 127.0.0.1 for a listener bound to 0.0.0.0 (the old gateway-tcp.yaml)', () => {
    const old = text('gateway-tcp.yaml').replace('# Envoy listens on 0.0.0.0:10443', '# Envoy listens on https://127.0.0.1:10443');
    assert.notEqual(old, text('gateway-tcp.yaml'));
    assertRule(checkHardening(parseYaml(old) as Node, old), 'comment-bind-address', 'line 3');
    // Addresses of other things (the SDS server, a client command) are not listeners.
    assert.deepEqual(checkHardening(load('gateway-tcp.yaml'), '# sds-server on 127.0.0.1:18000\n# curl https://localhost:10443/\n'), []);
  });

  it('the hardened files still pass the strict type and consistency checks', () => {
    for (const f of FILES) {
      assert.deepEqual(checkEnvoyJson('envoy.config.bootstrap.v3.Bootstrap', load(f)), [], f);
      assert.deepEqual(checkBootstrapConsistency(load(f)), [], f);
    }
  });
});
