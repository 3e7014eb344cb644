// Production rules for the bootstraps we ship (envoy-config/*.yaml), beyond what the types
// and references check (envoy-config-check.ts): what an Envoy expert would flag reading
// them line by line. Each rule has a stable id; a problem reads `<path>: <rule>: <what>`.
//
// - sds-keepalive: every gRPC channel to the SDS server notices a dead peer on an idle
//   connection. Envoy's own client (envoy_grpc): HTTP/2 `connection_keepalive` on the
//   cluster; Google gRPC (google_grpc): `grpc.keepalive_time_ms` and
//   `grpc.keepalive_timeout_ms` channel args (and `grpc.http2.max_pings_without_data: 0`,
//   or gRPC stops pinging after two pings on a stream that carries no data, which is every
//   SDS stream between rotations). Without it a half-open connection to a dead server pod
//   stops rotations silently.
// - sds-circuit-breakers: a cluster that carries one SDS stream per secret name
//   (api_type GRPC/DELTA_GRPC, not ADS) raises `circuit_breakers` max_requests above
//   Envoy's default 1024; every stream counts as a request.
// - edge-*: on listeners bound to a non-loopback address (internet-facing), every HTTP
//   connection manager sets `request_headers_timeout` (slow headers), `stream_idle_timeout`
//   and `common_http_protocol_options.idle_timeout` (idle streams and connections),
//   `use_remote_address: true` (the peer is the client: X-Forwarded-For is not trusted);
//   the listener sets `per_connection_buffer_limit_bytes` to at most 64 KiB (Envoy's edge
//   guidance is 32 KiB; the default is 1 MiB per connection).
// - downstream-alpn: a TLS listener in front of an HTTP connection manager advertises ALPN
//   for the protocols the codec speaks (AUTO: h2 and http/1.1); without it HTTP/2 clients
//   fall back to HTTP/1.1.
// - readiness-proves-certificate: in a bootstrap whose listeners take their certificate
//   over SDS, a readiness route (path with "ready") on a plaintext listener may not answer
//   by itself (direct_response): it routes to a cluster that makes a TLS connection to the
//   SDS-served TLS listener of this bootstrap, so it fails while that listener has no
//   certificate (after initial_fetch_timeout Envoy starts anyway, without one).
// - comment-bind-address: a comment that names `<ip>:<port>` of a listener names the
//   address it binds (a comment saying 127.0.0.1 on a listener that binds 0.0.0.0 hides
//   an open port).

import { isIP } from 'node:net';
import { canonicalBootstrap, durationSeconds } from './envoy-config-check.js';

type JsonObject = Record<string, unknown>;

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const DOWNSTREAM_TLS = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM_TLS = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const ENVOY_DEFAULT_MAX_REQUESTS = 1024;
const EDGE_MAX_BUFFER_BYTES = 64 * 1024;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): JsonObject => (isObject(v) ? v : {});
const list = (v: unknown): JsonObject[] => (Array.isArray(v) ? v.filter(isObject) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const typeOfAny = (v: unknown): string => {
  const url = str(obj(v)['@type']);
  return url.slice(url.lastIndexOf('/') + 1);
};
const positiveDuration = (v: unknown): boolean => (durationSeconds(v) ?? 0) > 0;

export const HARDENING_RULES = [
  'sds-keepalive',
  'sds-circuit-breakers',
  'edge-request-headers-timeout',
  'edge-idle-timeouts',
  'edge-use-remote-address',
  'edge-buffer-limit',
  'downstream-alpn',
  'readiness-proves-certificate',
  'comment-bind-address',
] as const;
export type HardeningRule = (typeof HARDENING_RULES)[number];

interface Listener {
  path: string;
  value: JsonObject;
  /** The bind address, or undefined for a pipe. */
  address: string | undefined;
  port: number | undefined;
}

interface Chain {
  path: string;
  value: JsonObject;
  tls: JsonObject | undefined;
  hcms: Array<{ path: string; value: JsonObject }>;
}

/** Problems of `bootstrap` against the rules; `text` (the file as written) enables the comment rule. */
export function checkHardening(bootstrap: unknown, text?: string): string[] {
  const b = canonicalBootstrap(bootstrap);
  const out: string[] = [];
  const problem = (path: string, rule: HardeningRule, what: string): void => void out.push(`${path}: ${rule}: ${what}`);
  const statics = obj(b['static_resources']);
  const clusters = new Map(
    list(statics['clusters']).map((c, i) => [str(c['name']), { path: `static_resources.clusters[${i}]`, value: c }]),
  );
  const listeners = listenersOf(statics);

  // --- SDS channels
  const sources = configSources(b);
  const perNameClusters = new Set<string>();
  for (const s of sources) {
    list(s.api['grpc_services']).forEach((g, i) => {
      const gpath = `${s.path}.grpc_services[${i}]`;
      const envoyGrpc = g['envoy_grpc'];
      if (isObject(envoyGrpc)) {
        const name = str(envoyGrpc['cluster_name']);
        if (!s.aggregated) perNameClusters.add(name);
        const cluster = clusters.get(name);
        if (cluster !== undefined && !hasHttp2Keepalive(cluster.value)) {
          problem(
            cluster.path,
            'sds-keepalive',
            `SDS cluster "${name}" needs http2_protocol_options.connection_keepalive (interval and timeout) to notice a dead server`,
          );
        }
      }
      const googleGrpc = g['google_grpc'];
      if (isObject(googleGrpc)) {
        const args = obj(obj(googleGrpc['channel_args'])['args']);
        const int = (k: string): number | undefined => {
          const v = obj(args[k])['int_value'];
          return typeof v === 'number' || typeof v === 'string' ? Number(v) : undefined;
        };
        for (const key of ['grpc.keepalive_time_ms', 'grpc.keepalive_timeout_ms']) {
          if (!((int(key) ?? 0) > 0))
            problem(
              `${gpath}.google_grpc.channel_args`,
              'sds-keepalive',
              `google_grpc needs channel arg ${key} > 0 to notice a dead server`,
            );
        }
        if (int('grpc.http2.max_pings_without_data') !== 0) {
          problem(
            `${gpath}.google_grpc.channel_args`,
            'sds-keepalive',
            'google_grpc needs grpc.http2.max_pings_without_data: 0, or keepalive stops after two pings on an SDS stream without data',
          );
        }
      }
    });
  }
  for (const name of perNameClusters) {
    const cluster = clusters.get(name);
    if (cluster === undefined) continue;
    const thresholds = list(obj(cluster.value['circuit_breakers'])['thresholds']);
    const normal = thresholds.find((t) => str(t['priority']) === '' || str(t['priority']) === 'DEFAULT');
    const maxRequests = Number(normal?.['max_requests'] ?? ENVOY_DEFAULT_MAX_REQUESTS);
    if (!(maxRequests > ENVOY_DEFAULT_MAX_REQUESTS)) {
      problem(
        cluster.path,
        'sds-circuit-breakers',
        `SDS cluster "${name}" carries one stream per secret: raise circuit_breakers max_requests above ${ENVOY_DEFAULT_MAX_REQUESTS}`,
      );
    }
  }

  // --- listeners
  const sdsTlsPorts = new Set<number>();
  for (const l of listeners) {
    const chains = chainsOf(l);
    const edge = l.address !== undefined && !isLoopback(l.address);
    if (edge) {
      const limit = l.value['per_connection_buffer_limit_bytes'];
      if (typeof limit !== 'number' || limit > EDGE_MAX_BUFFER_BYTES) {
        problem(
          l.path,
          'edge-buffer-limit',
          `internet-facing listener needs per_connection_buffer_limit_bytes <= ${EDGE_MAX_BUFFER_BYTES} (Envoy's edge guidance: 32768)`,
        );
      }
    }
    for (const c of chains) {
      const common = obj(c.tls?.['common_tls_context']);
      if (
        c.tls !== undefined &&
        list(common['tls_certificate_sds_secret_configs']).some((s) => 'sds_config' in s) &&
        l.port !== undefined
      ) {
        sdsTlsPorts.add(l.port);
      }
      for (const h of c.hcms) {
        if (edge) checkEdgeHcm(h.path, h.value, problem);
        if (c.tls !== undefined) {
          const alpn = Array.isArray(common['alpn_protocols']) ? common['alpn_protocols'].map(str) : [];
          const codec = str(h.value['codec_type']) || 'AUTO';
          const need = codec === 'HTTP1' ? ['http/1.1'] : codec === 'HTTP2' ? ['h2'] : ['h2', 'http/1.1'];
          const missing = need.filter((p) => !alpn.includes(p));
          if (missing.length > 0) {
            problem(
              `${c.path}.transport_socket.typed_config.common_tls_context.alpn_protocols`,
              'downstream-alpn',
              `codec ${codec} needs ALPN ${need.join(', ')}; missing ${missing.join(', ')}`,
            );
          }
        }
      }
    }
  }

  // --- readiness
  if (sdsTlsPorts.size > 0) {
    for (const l of listeners) {
      for (const c of chainsOf(l)) {
        if (c.tls !== undefined) continue;
        for (const h of c.hcms) {
          list(obj(h.value['route_config'])['virtual_hosts']).forEach((vh, i) => {
            list(vh['routes']).forEach((r, j) => {
              const match = obj(r['match']);
              const p = str(match['path']) || str(match['prefix']);
              if (!p.includes('ready')) return;
              const rpath = `${h.path}.route_config.virtual_hosts[${i}].routes[${j}]`;
              const target = str(obj(r['route'])['cluster']);
              const cluster = clusters.get(target);
              if (cluster === undefined || !reachesTlsPort(cluster.value, sdsTlsPorts)) {
                problem(
                  rpath,
                  'readiness-proves-certificate',
                  `readiness ${p} must route over TLS to a listener whose certificate comes over SDS (port ${[...sdsTlsPorts].join(', ')}), so it fails while that listener has no certificate`,
                );
              }
            });
          });
        }
      }
    }
  }

  // --- comments
  if (text !== undefined) {
    const bound = new Map(listeners.filter((l) => l.port !== undefined && l.address !== undefined).map((l) => [l.port, l.address]));
    text.split('\n').forEach((line, i) => {
      const hash = line.indexOf('#');
      if (hash < 0) return;
      for (const m of line.slice(hash).matchAll(/(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]*\]):(\d+)/g)) {
        const address = (m[1] ?? '').replace(/^\[|\]$/g, '');
        const actual = bound.get(Number(m[2]));
        if (actual !== undefined && actual !== address) {
          problem(`line ${i + 1}`, 'comment-bind-address', `the comment says ${m[0]} but the listener on port ${m[2]} binds ${actual}`);
        }
      }
    });
  }
  return out;
}

function checkEdgeHcm(path: string, h: JsonObject, problem: (path: string, rule: HardeningRule, what: string) => void): void {
  if (!positiveDuration(h['request_headers_timeout'])) {
    problem(
      `${path}.request_headers_timeout`,
      'edge-request-headers-timeout',
      'internet-facing: set request_headers_timeout (the default waits forever for slow headers)',
    );
  }
  if (!positiveDuration(h['stream_idle_timeout'])) {
    problem(`${path}.stream_idle_timeout`, 'edge-idle-timeouts', 'internet-facing: set stream_idle_timeout explicitly');
  }
  if (!positiveDuration(obj(h['common_http_protocol_options'])['idle_timeout'])) {
    problem(
      `${path}.common_http_protocol_options.idle_timeout`,
      'edge-idle-timeouts',
      'internet-facing: set common_http_protocol_options.idle_timeout (idle connections are otherwise kept open)',
    );
  }
  if (h['use_remote_address'] !== true) {
    problem(
      `${path}.use_remote_address`,
      'edge-use-remote-address',
      'internet-facing: use_remote_address: true (the peer is the client; X-Forwarded-For from the internet is not trusted)',
    );
  }
}

function listenersOf(statics: JsonObject): Listener[] {
  return list(statics['listeners']).map((l, i) => {
    const socket = obj(obj(l['address'])['socket_address']);
    const port = socket['port_value'];
    return {
      path: `static_resources.listeners[${i}]`,
      value: l,
      address: 'socket_address' in obj(l['address']) ? str(socket['address']) : undefined,
      port: typeof port === 'number' ? port : undefined,
    };
  });
}

function chainsOf(l: Listener): Chain[] {
  const raw = list(l.value['filter_chains']).map((fc, j) => ({ fc, p: `${l.path}.filter_chains[${j}]` }));
  if (isObject(l.value['default_filter_chain'])) raw.push({ fc: l.value['default_filter_chain'], p: `${l.path}.default_filter_chain` });
  return raw.map(({ fc, p }) => {
    const socketConfig = obj(fc['transport_socket'])['typed_config'];
    return {
      path: p,
      value: fc,
      tls: typeOfAny(socketConfig) === DOWNSTREAM_TLS ? obj(socketConfig) : undefined,
      hcms: list(fc['filters'])
        .map((f, k) => ({ path: `${p}.filters[${k}].typed_config`, value: obj(f['typed_config']) }))
        .filter((f) => typeOfAny(f.value) === HCM),
    };
  });
}

/** Every gRPC ApiConfigSource of the bootstrap, with whether it is the ADS stream. */
function configSources(b: JsonObject): Array<{ path: string; api: JsonObject; aggregated: boolean }> {
  const out: Array<{ path: string; api: JsonObject; aggregated: boolean }> = [];
  const ads = obj(b['dynamic_resources'])['ads_config'];
  if (isObject(ads)) out.push({ path: 'dynamic_resources.ads_config', api: ads, aggregated: true });
  const visit = (v: unknown, path: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, `${path}[${i}]`));
    if (!isObject(v)) return;
    for (const [k, x] of Object.entries(v)) {
      const p = path === '' ? k : `${path}.${k}`;
      if (k === 'api_config_source' && isObject(x)) {
        const type = str(x['api_type']);
        out.push({ path: p, api: x, aggregated: type.startsWith('AGGREGATED') });
      } else visit(x, p);
    }
  };
  visit(b['static_resources'], 'static_resources');
  return out;
}

function hasHttp2Keepalive(cluster: JsonObject): boolean {
  const options = obj(obj(cluster['typed_extension_protocol_options'])[HTTP_PROTOCOL_OPTIONS]);
  const h2 = obj(obj(options['explicit_http_config'])['http2_protocol_options']);
  const keepalive = obj(h2['connection_keepalive']);
  return positiveDuration(keepalive['interval']) && positiveDuration(keepalive['timeout']);
}

/** A cluster that connects over TLS to loopback on one of `ports`. */
function reachesTlsPort(cluster: JsonObject, ports: Set<number>): boolean {
  if (typeOfAny(obj(cluster['transport_socket'])['typed_config']) !== UPSTREAM_TLS) return false;
  const addresses = list(obj(cluster['load_assignment'])['endpoints'])
    .flatMap((e) => list(e['lb_endpoints']))
    .map((lb) => obj(obj(obj(lb['endpoint'])['address'])['socket_address']));
  return addresses.length > 0 && addresses.every((a) => isLoopback(str(a['address'])) && ports.has(Number(a['port_value'])));
}

function isLoopback(address: string): boolean {
  if (address === '::1' || address === 'localhost') return true;
  return isIP(address) === 4 && address.startsWith('127.');
}
