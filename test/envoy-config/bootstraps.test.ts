// The Envoy bootstraps we ship (envoy-config/*.yaml) against the upstream Envoy API, and
// the checker itself: each negative case proves it catches one kind of mistake.

import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parseDocument } from 'yaml';
import { checkBootstrapConsistency, checkEnvoyJson, sdsSecretNames, type SdsSecretRef } from '../support/envoy-config-check.js';
import { lookupUpstreamService, lookupUpstreamType } from '../support/envoy-protos.js';

const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const CONFIG_DIR = fileURLToPath(new URL('../../../envoy-config/', import.meta.url));
const FILES = readdirSync(CONFIG_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type J = Record<string, any>;

function readText(file: string): string {
  return readFileSync(`${CONFIG_DIR}${file}`, 'utf8');
}

/** A fresh parsed copy of envoy-config/<file>. */
function load(file: string): J {
  const doc = parseDocument(readText(file));
  assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
  const value: unknown = doc.toJS();
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `${file}: not a mapping`);
  return value;
}

/** Problems of both checks. */
function problemsOf(bootstrap: unknown): string[] {
  return [...checkEnvoyJson(BOOTSTRAP, bootstrap), ...checkBootstrapConsistency(bootstrap)];
}

/** Asserts one problem mentions `path` (exactly, as the part before ': ') and `text`. */
function assertProblem(problems: string[], path: string, text: string | RegExp): void {
  const hit = problems.some((p) => {
    const sep = p.indexOf(': ');
    const at = p.slice(0, sep);
    const what = p.slice(sep + 2);
    return at === path && (typeof text === 'string' ? what.includes(text) : text.test(what));
  });
  assert.ok(hit, `expected a problem at ${path} matching ${String(text)}; got:\n  ${problems.join('\n  ')}`);
}

// Paths into gateway-tcp.yaml used by the negative cases.
const LISTENER = 'static_resources.listeners[0]';
const TLS_CONTEXT = `${LISTENER}.filter_chains[0].transport_socket.typed_config`;
const SDS = `${TLS_CONTEXT}.common_tls_context.tls_certificate_sds_secret_configs[0]`;
const API = `${SDS}.sds_config.api_config_source`;
const HCM = `${LISTENER}.filter_chains[0].filters[0].typed_config`;
const ROUTE0 = `${HCM}.route_config.virtual_hosts[0].routes[0]`;
const CLUSTER = 'static_resources.clusters[0]';

function tcp(): J {
  return load('gateway-tcp.yaml');
}
const tlsContext = (b: J): J => b['static_resources'].listeners[0].filter_chains[0].transport_socket.typed_config;
const sdsConfig = (b: J): J => tlsContext(b)['common_tls_context'].tls_certificate_sds_secret_configs[0];
const hcm = (b: J): J => b['static_resources'].listeners[0].filter_chains[0].filters[0].typed_config;
const route0 = (b: J): J => hcm(b)['route_config'].virtual_hosts[0].routes[0];
const sdsCluster = (b: J): J => b['static_resources'].clusters[0];

describe('envoy-config/*.yaml', () => {
  it('ships the seven bootstraps and a README', () => {
    for (const f of [
      'gateway-tcp.yaml',
      'gateway-uds.yaml',
      'gateway-mtls.yaml',
      'reencrypt-upstream.yaml',
      'gateway-ads.yaml',
      'acme-http01.yaml',
      'gateway-kubernetes.yaml',
    ]) {
      assert.ok(FILES.includes(f), `missing envoy-config/${f}`);
    }
    const readme = readFileSync(`${CONFIG_DIR}README.md`, 'utf8');
    for (const f of FILES) assert.ok(readme.includes(f), `README.md does not describe ${f}`);
  });

  for (const file of FILES) {
    describe(file, () => {
      it('starts with a comment header saying what it shows and how to run it', () => {
        const header = readText(file)
          .split('\n')
          .filter((l) => l.startsWith('#'));
        assert.ok(readText(file).startsWith(`# ${file}:`), 'first line names the file');
        assert.ok(
          header.some((l) => l.includes('envoy -c')),
          'header shows `envoy -c <file>`',
        );
      });

      it('parses as YAML and matches the upstream Bootstrap type', () => {
        assert.deepEqual(checkEnvoyJson(BOOTSTRAP, load(file)), []);
      });

      it('is consistent (clusters, HTTP/2, ADS, node, SDS names, pipes)', () => {
        assert.deepEqual(checkBootstrapConsistency(load(file)), []);
      });

      it('reads the same as JSON (camelCase field names accepted too)', () => {
        assert.deepEqual(checkEnvoyJson(BOOTSTRAP, JSON.parse(JSON.stringify(load(file)))), []);
        assert.deepEqual(checkEnvoyJson(BOOTSTRAP, camelCase(load(file))), []);
        assert.deepEqual(checkBootstrapConsistency(camelCase(load(file))), []);
      });

      it('takes at least one secret over SDS, each with a node identity', () => {
        const refs = sdsSecretNames(load(file));
        assert.ok(refs.length > 0);
        for (const r of refs) assert.notEqual(r.source, 'static');
        const node = load(file)['node'];
        assert.ok(node.id && node.cluster);
      });
    });
  }
});

describe('what each bootstrap shows', () => {
  const names = (refs: SdsSecretRef[]): string[][] => refs.map((r) => [r.name, r.kind, r.source]);

  it('gateway-tcp: `localhost` on :10443 from sds-server at 127.0.0.1:18000 over h2c', () => {
    const b = tcp();
    assert.deepEqual(names(sdsSecretNames(b)), [['localhost', 'tls_certificate', 'grpc']]);
    assert.equal(b['static_resources'].listeners[0].address.socket_address.port_value, 10443);
    const c = sdsCluster(b);
    assert.equal(c.name, 'sds-server');
    assert.deepEqual(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, {
      address: '127.0.0.1',
      port_value: 18000,
    });
    assert.ok(
      c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config
        .http2_protocol_options,
    );
  });

  it('gateway-uds: the SDS cluster is the Unix socket /var/run/envoy-sds/sds.sock', () => {
    const b = load('gateway-uds.yaml');
    const c = b['static_resources'].clusters.find((x: J) => x['name'] === 'sds-server');
    assert.equal(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path, '/var/run/envoy-sds/sds.sock');
  });

  it('gateway-mtls: the SDS cluster presents a client certificate and checks the server', () => {
    const c = load('gateway-mtls.yaml')['static_resources'].clusters.find((x: J) => x['name'] === 'sds-server');
    const tls = c.transport_socket.typed_config;
    assert.equal(tls['@type'], 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
    assert.deepEqual(tls.common_tls_context.tls_certificates, [
      { certificate_chain: { filename: '/etc/envoy-sds/tls/client.crt' }, private_key: { filename: '/etc/envoy-sds/tls/client.key' } },
    ]);
    assert.equal(tls.common_tls_context.validation_context.trusted_ca.filename, '/etc/envoy-sds/tls/ca.crt');
  });

  it('reencrypt-upstream: the backend CA bundle `localhost-cacert` comes over SDS, with SNI and SAN', () => {
    const b = load('reencrypt-upstream.yaml');
    const refs = sdsSecretNames(b);
    assert.deepEqual(names(refs), [
      ['localhost', 'tls_certificate', 'grpc'],
      ['localhost-cacert', 'validation_context', 'grpc'],
    ]);
    assert.ok(refs[1]?.path.startsWith('static_resources.clusters[0].transport_socket'));
    const tls = b['static_resources'].clusters[0].transport_socket.typed_config;
    assert.equal(tls.sni, 'localhost');
    const combined = tls.common_tls_context.combined_validation_context;
    assert.deepEqual(combined.default_validation_context.match_typed_subject_alt_names, [
      { san_type: 'DNS', matcher: { exact: 'localhost' } },
    ]);
  });

  it('gateway-ads: every secret over ADS, with a bootstrap ads_config', () => {
    const b = load('gateway-ads.yaml');
    assert.deepEqual(names(sdsSecretNames(b)), [
      ['localhost', 'tls_certificate', 'ads'],
      ['localhost-cacert', 'validation_context', 'ads'],
    ]);
    assert.equal(b['dynamic_resources'].ads_config.api_type, 'GRPC');
  });

  it('acme-http01: port 80 sends the challenge prefix to sds-http (18080) and redirects the rest', () => {
    const b = load('acme-http01.yaml');
    const http = b['static_resources'].listeners.find((l: J) => l['address'].socket_address.port_value === 80);
    const routes = http.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    assert.deepEqual(routes[0].match, { prefix: '/.well-known/acme-challenge/' });
    assert.equal(routes[0].route.cluster, 'sds-http');
    assert.equal(routes[1].redirect.https_redirect, true);
    const c = b['static_resources'].clusters.find((x: J) => x['name'] === 'sds-http');
    assert.equal(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value, 18080);
  });

  it('gateway-kubernetes: Kubernetes names, TLS to the in-cluster service, token from a file', () => {
    const b = load('gateway-kubernetes.yaml');
    const refs = sdsSecretNames(b);
    assert.deepEqual(names(refs), [
      ['kubernetes://gateway/gateway-tls', 'tls_certificate', 'grpc'],
      // the same secret again: the readiness chain of :8443 (loopback callers) shares the TLS context
      ['kubernetes://gateway/gateway-tls', 'tls_certificate', 'grpc'],
      ['configmap://gateway/backend-ca', 'validation_context', 'grpc'],
    ]);
    const google = sdsConfig(b)['sds_config'].api_config_source.grpc_services[0].google_grpc;
    assert.equal(google.target_uri, 'envoy-sds.envoy-sds.svc.cluster.local:18000');
    assert.ok(google.channel_credentials.ssl_credentials.root_certs.filename);
    assert.equal(google.credentials_factory_name, 'envoy.grpc_credentials.file_based_metadata');
    const plugin = google.call_credentials[0].from_plugin.typed_config;
    assert.equal(plugin.secret_data.filename, '/var/run/secrets/envoy-sds/token');
    assert.equal(plugin.header_key, 'authorization');
    assert.equal(plugin.header_prefix, 'Bearer ');
  });
});

describe('checkEnvoyJson catches', () => {
  it('an unknown field, with its path', () => {
    const b = tcp();
    sdsCluster(b)['conect_timeout'] = '1s';
    assertProblem(
      checkEnvoyJson(BOOTSTRAP, b),
      `${CLUSTER}.conect_timeout`,
      'unknown field "conect_timeout" in envoy.config.cluster.v3.Cluster',
    );
  });

  it('an unknown field inside an Any', () => {
    const b = tcp();
    tlsContext(b)['require_sni_please'] = true;
    assertProblem(checkEnvoyJson(BOOTSTRAP, b), `${TLS_CONTEXT}.require_sni_please`, 'DownstreamTlsContext');
  });

  it('wrong scalar types', () => {
    const b = tcp();
    sdsCluster(b).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = 'eighteen';
    hcm(b)['stat_prefix'] = 7;
    hcm(b)['normalize_path'] = 'yes'; // BoolValue
    sdsCluster(b).circuit_breakers.thresholds[0].max_requests = 1.5; // UInt32Value
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(
      p,
      `${CLUSTER}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value`,
      'expected an integer (uint32)',
    );
    assertProblem(p, `${HCM}.stat_prefix`, 'expected a string');
    assertProblem(p, `${HCM}.normalize_path`, 'expected true or false');
    assertProblem(p, `${CLUSTER}.circuit_breakers.thresholds[0].max_requests`, 'expected an integer (uint32)');
  });

  it('integers out of range and PGV numeric bounds', () => {
    const b = tcp();
    b['static_resources'].listeners[0].address.socket_address.port_value = 70000;
    b['admin'].address.socket_address.port_value = -1;
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${LISTENER}.address.socket_address.port_value`, 'must be <= 65535');
    assertProblem(p, 'admin.address.socket_address.port_value', 'out of range for uint32');
  });

  it('a bad enum name, an undefined enum number, and a rejected default', () => {
    const b = tcp();
    sdsConfig(b)['sds_config'].api_config_source.api_type = 'GRCP';
    sdsConfig(b)['sds_config'].resource_api_version = 42;
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${API}.api_type`, 'unknown value "GRCP" for enum envoy.config.core.v3.ApiConfigSource.ApiType');
    assertProblem(p, `${SDS}.sds_config.resource_api_version`, '42 is not a defined value');

    const r = load('reencrypt-upstream.yaml');
    const san =
      r['static_resources'].clusters[0].transport_socket.typed_config.common_tls_context.combined_validation_context
        .default_validation_context.match_typed_subject_alt_names[0];
    delete san.san_type;
    assertProblem(
      checkEnvoyJson(BOOTSTRAP, r),
      'static_resources.clusters[0].transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].san_type',
      'SAN_TYPE_UNSPECIFIED is not allowed',
    );
  });

  it('a bad @type: unknown type, wrong prefix, missing', () => {
    const b = tcp();
    hcm(b)['http_filters'][0].typed_config['@type'] = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr';
    tlsContext(b)['@type'] = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
    delete sdsCluster(b).typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']['@type'];
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${HCM}.http_filters[0].typed_config`, 'names no message type');
    assertProblem(p, TLS_CONTEXT, 'must start with type.googleapis.com/');
    assertProblem(
      p,
      `${CLUSTER}.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]`,
      'without a string "@type"',
    );
  });

  it('a DataSource with two specifiers, or none', () => {
    const m = load('gateway-mtls.yaml');
    const certs = m['static_resources'].clusters[0].transport_socket.typed_config.common_tls_context.tls_certificates[0];
    certs.private_key.inline_string = '-----BEGIN PRIVATE KEY-----';
    certs.certificate_chain = {};
    const at = 'static_resources.clusters[0].transport_socket.typed_config.common_tls_context.tls_certificates[0]';
    const p = checkEnvoyJson(BOOTSTRAP, m);
    assertProblem(p, `${at}.private_key`, 'oneof specifier: only one of filename, inline_string may be set');
    assertProblem(
      p,
      `${at}.certificate_chain`,
      'oneof specifier: one of filename, inline_bytes, inline_string, environment_variable is required',
    );
  });

  it('two members of a oneof (route and direct_response)', () => {
    const b = tcp();
    route0(b)['route'] = { cluster: 'sds-server' };
    assertProblem(checkEnvoyJson(BOOTSTRAP, b), ROUTE0, 'oneof action: only one of route, direct_response may be set');
  });

  it('a single value where a list belongs, and the reverse', () => {
    const b = tcp();
    const api = sdsConfig(b)['sds_config'].api_config_source;
    api.grpc_services = api.grpc_services[0];
    hcm(b)['route_config'].virtual_hosts[0].domains = '*';
    hcm(b)['stat_prefix'] = ['https'];
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${API}.grpc_services`, 'expected a list');
    assertProblem(p, `${HCM}.route_config.virtual_hosts[0].domains`, 'expected a list');
    assertProblem(p, `${HCM}.stat_prefix`, 'not repeated');
  });

  it('maps: not an object, null values', () => {
    const b = tcp();
    sdsCluster(b).typed_extension_protocol_options = [sdsCluster(b).typed_extension_protocol_options];
    b['node'].metadata = { zone: 'a', tags: ['x', 1, { y: null }] }; // Struct: any JSON
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${CLUSTER}.typed_extension_protocol_options`, 'expected an object (map field');
    assert.ok(!p.some((x) => x.startsWith('node.metadata')), p.join('\n'));

    const c = tcp();
    sdsCluster(c).typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] = null;
    assertProblem(
      checkEnvoyJson(BOOTSTRAP, c),
      `${CLUSTER}.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]`,
      'cannot be null',
    );
  });

  it('well-known types: Duration, Struct, wrappers, Any holding a well-known type', () => {
    const b = tcp();
    sdsCluster(b).connect_timeout = 5; // Duration must be a string
    sdsConfig(b)['sds_config'].initial_fetch_timeout = '15 s';
    b['node'].metadata = 'zone-a'; // Struct must be an object
    b['admin'].address.socket_address.ipv4_compat = 1;
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${CLUSTER}.connect_timeout`, 'expected a duration string');
    assertProblem(p, `${SDS}.sds_config.initial_fetch_timeout`, 'expected a duration string');
    assertProblem(p, 'node.metadata', 'expected an object (google.protobuf.Struct)');
    assertProblem(p, 'admin.address.socket_address.ipv4_compat', 'expected true or false');

    const ok = tcp();
    sdsCluster(ok).connect_timeout = '0.250s';
    sdsCluster(ok).circuit_breakers.thresholds[0].max_requests = '100000'; // 32-bit integers may be strings
    tlsContext(ok)['require_client_certificate'] = false; // BoolValue as a plain boolean
    assert.deepEqual(checkEnvoyJson(BOOTSTRAP, ok), []);

    const any = tcp();
    hcm(any)['http_filters'][0].typed_config = { '@type': 'type.googleapis.com/google.protobuf.Struct', fields: {} };
    assertProblem(
      checkEnvoyJson(BOOTSTRAP, any),
      `${HCM}.http_filters[0].typed_config.fields`,
      'unknown field "fields" in an Any holding google.protobuf.Struct',
    );
  });

  it('Duration bounds from PGV', () => {
    const b = tcp();
    sdsConfig(b)['sds_config'].api_config_source.request_timeout = '0s'; // gt: 0
    assertProblem(checkEnvoyJson(BOOTSTRAP, b), `${API}.request_timeout`, 'must be > 0s');
  });

  it('TypedStruct, recursing into its type_url', () => {
    const b = tcp();
    hcm(b)['http_filters'][0].typed_config = {
      '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
      type_url: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
      value: { dynamic_stats: true, suppress_envoy_headerz: true },
    };
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assert.equal(p.length, 1, p.join('\n'));
    assertProblem(p, `${HCM}.http_filters[0].typed_config.value.suppress_envoy_headerz`, 'unknown field');
  });

  it('PGV required messages and min_len strings, also when the field is absent', () => {
    const r = load('reencrypt-upstream.yaml');
    const combined = r['static_resources'].clusters[0].transport_socket.typed_config.common_tls_context.combined_validation_context;
    delete combined.default_validation_context;
    const b = tcp();
    delete hcm(b)['stat_prefix'];
    sdsConfig(b)['name'] = '';
    delete sdsConfig(b)['sds_config'].api_config_source.grpc_services[0].envoy_grpc.cluster_name;
    const p = [...checkEnvoyJson(BOOTSTRAP, r), ...checkEnvoyJson(BOOTSTRAP, b)];
    assertProblem(
      p,
      'static_resources.clusters[0].transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context',
      'required field default_validation_context',
    );
    assertProblem(p, `${HCM}.stat_prefix`, 'must not be empty');
    assertProblem(p, `${SDS}.name`, 'must not be empty');
    assertProblem(p, `${API}.grpc_services[0].envoy_grpc.cluster_name`, 'must not be empty');
  });

  it('PGV header-value rules on initial_metadata', () => {
    const b = tcp();
    sdsConfig(b)['sds_config'].api_config_source.grpc_services[0].initial_metadata = [{ key: 'bad\nheader', value: 'x\ny' }];
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${API}.grpc_services[0].initial_metadata[0].key`, 'not a valid HTTP header name');
    assertProblem(p, `${API}.grpc_services[0].initial_metadata[0].value`, 'not a valid HTTP header value');
  });

  it('deprecated fields (unless allowed) and fields Envoy does not implement', () => {
    const b = tcp();
    sdsCluster(b).http2_protocol_options = {};
    sdsConfig(b)['sds_config'].authorities = [{ name: 'xds.example' }];
    const p = checkEnvoyJson(BOOTSTRAP, b);
    assertProblem(p, `${CLUSTER}.http2_protocol_options`, 'deprecated field http2_protocol_options');
    assertProblem(p, `${SDS}.sds_config.authorities`, '[#not-implemented-hide:]');
    assert.ok(!checkEnvoyJson(BOOTSTRAP, b, { allowDeprecated: true }).some((x) => x.includes('deprecated')));
  });

  it('snake_case and camelCase, but not both for one field', () => {
    const b = tcp();
    hcm(b)['statPrefix'] = 'again';
    assertProblem(checkEnvoyJson(BOOTSTRAP, b), `${HCM}.stat_prefix`, 'given twice, as "stat_prefix" and as "statPrefix"');
    const camel = camelCase(tcp());
    camel['staticResources'].clusters[0].connectTimeout = 'soon';
    assertProblem(checkEnvoyJson(BOOTSTRAP, camel), `${CLUSTER}.connect_timeout`, 'expected a duration string');
  });

  it('null as unset, like proto3 JSON', () => {
    const b = tcp();
    b['admin'] = null;
    sdsCluster(b).circuit_breakers = null;
    assert.deepEqual(checkEnvoyJson(BOOTSTRAP, b), []);
    hcm(b)['stat_prefix'] = null;
    assertProblem(checkEnvoyJson(BOOTSTRAP, b), `${HCM}.stat_prefix`, 'must not be empty');
  });

  it('a value that is not an object at the top', () => {
    assertProblem(checkEnvoyJson(BOOTSTRAP, 'node: {}'), '(root)', 'expected an object (envoy.config.bootstrap.v3.Bootstrap)');
  });

  it('other message types by name, such as a Secret as the server sends it', () => {
    const secret = {
      name: 'localhost',
      tls_certificate: { certificate_chain: { inline_bytes: 'LS0tLS1CRUdJTg==' }, private_key: { inline_string: 'x' } },
    };
    assert.deepEqual(checkEnvoyJson('envoy.extensions.transport_sockets.tls.v3.Secret', secret), []);
    assertProblem(
      checkEnvoyJson('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', { ...secret, validation_context: {} }),
      '(root)',
      'oneof type: only one of tls_certificate, validation_context may be set',
    );
  });
});

describe('checkBootstrapConsistency catches', () => {
  it('an envoy_grpc cluster that does not exist', () => {
    const b = tcp();
    sdsConfig(b)['sds_config'].api_config_source.grpc_services[0].envoy_grpc.cluster_name = 'sds-servr';
    assertProblem(checkBootstrapConsistency(b), `${API}.grpc_services[0].envoy_grpc.cluster_name`, 'cluster "sds-servr" is not defined');
  });

  it('a route to a cluster that does not exist', () => {
    const b = load('reencrypt-upstream.yaml');
    hcm(b)['route_config'].virtual_hosts[0].routes[0].route.cluster = 'backnd';
    assertProblem(checkBootstrapConsistency(b), `${ROUTE0}.route.cluster`, 'cluster "backnd" is not defined');
  });

  it('an SDS cluster that is not HTTP/2', () => {
    const b = tcp();
    delete sdsCluster(b).typed_extension_protocol_options;
    assertProblem(checkBootstrapConsistency(b), CLUSTER, 'not configured for HTTP/2');
    const h1 = tcp();
    sdsCluster(h1).typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config = {
      http_protocol_options: {},
    };
    assertProblem(checkBootstrapConsistency(h1), CLUSTER, 'not configured for HTTP/2');
  });

  it('HttpProtocolOptions under the wrong key', () => {
    const b = tcp();
    const opts = sdsCluster(b).typed_extension_protocol_options;
    opts['envoy.upstreams.http.http_protocol_options'] = opts['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    delete opts['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    const p = checkBootstrapConsistency(b);
    assertProblem(p, `${CLUSTER}.typed_extension_protocol_options["envoy.upstreams.http.http_protocol_options"]`, 'must be keyed');
    assertProblem(p, CLUSTER, 'not configured for HTTP/2');
  });

  it('ads: {} without a bootstrap ads_config', () => {
    const b = load('gateway-ads.yaml');
    delete b['dynamic_resources'];
    assertProblem(checkBootstrapConsistency(b), `${SDS}.sds_config.ads`, 'needs dynamic_resources.ads_config');
  });

  it('a missing node id or cluster', () => {
    const b = tcp();
    delete b['node'].cluster;
    assertProblem(checkBootstrapConsistency(b), 'node.cluster', 'Envoy needs node.cluster');
    delete b['node'];
    assertProblem(checkBootstrapConsistency(b), 'node.id', 'Envoy needs node.id');
  });

  it('transport_api_version or resource_api_version not V3', () => {
    const b = tcp();
    delete sdsConfig(b)['sds_config'].api_config_source.transport_api_version;
    delete sdsConfig(b)['sds_config'].resource_api_version;
    const p = checkBootstrapConsistency(b);
    assertProblem(p, `${API}.transport_api_version`, 'must be V3');
    assertProblem(p, `${SDS}.sds_config.resource_api_version`, 'must be V3');
  });

  it('an SDS secret listed twice in one context, or with an empty name', () => {
    const b = tcp();
    const list = tlsContext(b)['common_tls_context'].tls_certificate_sds_secret_configs;
    list.push(structuredClone(list[0]));
    assertProblem(
      checkBootstrapConsistency(b),
      `${TLS_CONTEXT}.common_tls_context.tls_certificate_sds_secret_configs[1].name`,
      'listed twice',
    );
    list.pop();
    list[0].name = '';
    assertProblem(checkBootstrapConsistency(b), `${SDS}.name`, 'must not be empty');
  });

  it('an SDS reference without sds_config and without a static secret', () => {
    const b = tcp();
    delete sdsConfig(b)['sds_config'];
    assertProblem(checkBootstrapConsistency(b), `${SDS}.name`, 'no static_resources.secrets entry named "localhost"');
    b['static_resources'].secrets = [
      { name: 'localhost', tls_certificate: { certificate_chain: { filename: '/c' }, private_key: { filename: '/k' } } },
    ];
    assert.deepEqual(checkBootstrapConsistency(b), []);
    assert.deepEqual(
      sdsSecretNames(b).map((r) => r.source),
      ['static'],
    );
  });

  it('a relative pipe path', () => {
    const b = load('gateway-uds.yaml');
    b['static_resources'].clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path = 'run/sds.sock';
    assertProblem(
      checkBootstrapConsistency(b),
      `${CLUSTER}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path`,
      'must be absolute',
    );
  });

  it('a host name in a STATIC cluster', () => {
    const b = tcp();
    sdsCluster(b).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address = 'localhost';
    assertProblem(
      checkBootstrapConsistency(b),
      `${CLUSTER}.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address`,
      'needs an IP address',
    );
  });

  it('the wrong side of TLS on a listener or a cluster', () => {
    const b = tcp();
    tlsContext(b)['@type'] = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
    delete tlsContext(b)['require_client_certificate'];
    assertProblem(checkBootstrapConsistency(b), TLS_CONTEXT, 'needs a DownstreamTlsContext');
    const m = load('gateway-mtls.yaml');
    m['static_resources'].clusters[0].transport_socket.typed_config['@type'] =
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
    delete m['static_resources'].clusters[0].transport_socket.typed_config.sni;
    assertProblem(checkBootstrapConsistency(m), `${CLUSTER}.transport_socket.typed_config`, 'needs an UpstreamTlsContext');
  });

  it('two certificates in an upstream (client) TLS context', () => {
    const m = load('gateway-mtls.yaml');
    const common = m['static_resources'].clusters[0].transport_socket.typed_config.common_tls_context;
    common.tls_certificates.push(structuredClone(common.tls_certificates[0]));
    assertProblem(checkBootstrapConsistency(m), `${CLUSTER}.transport_socket.typed_config.common_tls_context`, 'at most one certificate');
  });

  it('an HTTP filter chain that does not end with the router', () => {
    const b = tcp();
    hcm(b)['http_filters'] = [];
    assertProblem(checkBootstrapConsistency(b), `${HCM}.http_filters`, 'needs the router filter');
  });

  it('duplicate cluster names', () => {
    const b = tcp();
    b['static_resources'].clusters.push(structuredClone(sdsCluster(b)));
    assertProblem(checkBootstrapConsistency(b), 'static_resources.clusters[1].name', 'duplicate cluster name "sds-server"');
  });

  it('google_grpc call credentials that Envoy would not send', () => {
    const k = load('gateway-kubernetes.yaml');
    const google = (b: J): J => sdsConfig(b)['sds_config'].api_config_source.grpc_services[0].google_grpc;
    const path = `${API}.grpc_services[0].google_grpc`;
    delete google(k)['credentials_factory_name'];
    assertProblem(checkBootstrapConsistency(k), `${path}.credentials_factory_name`, 'ignores from_plugin');

    const plain = load('gateway-kubernetes.yaml');
    google(plain)['channel_credentials'] = { local_credentials: {} }; // TCP target: no TLS
    assertProblem(checkBootstrapConsistency(plain), `${path}.channel_credentials`, 'only over TLS');

    const uds = load('gateway-kubernetes.yaml');
    google(uds)['channel_credentials'] = { local_credentials: {} };
    google(uds)['target_uri'] = 'unix:var/run/envoy-sds/sds.sock';
    assertProblem(checkBootstrapConsistency(uds), `${path}.target_uri`, 'relative Unix socket path');
  });

  it('accepts a bootstrap built in code as a plain object (what the server prints)', () => {
    const printed = {
      node: { id: 'printed', cluster: 'gateway' },
      staticResources: {
        clusters: [
          {
            name: 'sds-server',
            type: 'STATIC',
            connectTimeout: '1s',
            loadAssignment: {
              clusterName: 'sds-server',
              endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: 18000 } } } }] }],
            },
            typedExtensionProtocolOptions: {
              'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
                '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
                explicitHttpConfig: { http2ProtocolOptions: {} },
              },
            },
          },
        ],
      },
    };
    assert.deepEqual(problemsOf(printed), []);
    assert.deepEqual(sdsSecretNames(printed), []);
  });
});

describe('robustness', () => {
  it('never throws, whatever JSON value replaces any part of a bootstrap', () => {
    const slots = (root: J): [J, string][] => {
      const out: [J, string][] = [];
      const visit = (v: unknown): void => {
        if (typeof v !== 'object' || v === null) return;
        for (const [k, x] of Object.entries(v)) {
          out.push([v, k]);
          visit(x);
        }
      };
      visit(root);
      return out;
    };
    const slotCount = slots(tcp()).length;
    fc.assert(
      fc.property(fc.nat({ max: slotCount - 1 }), fc.jsonValue({ maxDepth: 3 }), (i, value) => {
        const b = tcp();
        const slot = slots(b)[i];
        assert.ok(slot !== undefined);
        slot[0][slot[1]] = value;
        for (const problems of [checkEnvoyJson(BOOTSTRAP, b), checkBootstrapConsistency(b)]) {
          assert.ok(Array.isArray(problems) && problems.every((p) => typeof p === 'string' && p.includes(': ')));
        }
        sdsSecretNames(b);
      }),
      { numRuns: 150 },
    );
  });
});

describe('upstream protos', () => {
  it('hold the SDS service and the discovery messages', () => {
    const sds = lookupUpstreamService('envoy.service.secret.v3.SecretDiscoveryService');
    assert.deepEqual(Object.keys(sds.methods).sort(), ['DeltaSecrets', 'FetchSecrets', 'StreamSecrets']);
    for (const t of ['DiscoveryRequest', 'DiscoveryResponse', 'DeltaDiscoveryRequest', 'DeltaDiscoveryResponse']) {
      assert.ok(lookupUpstreamType(`envoy.service.discovery.v3.${t}`).fields['type_url'], t);
    }
    const secret = lookupUpstreamType('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret');
    assert.deepEqual(secret.oneofs['type']?.oneof, ['tls_certificate', 'session_ticket_keys', 'validation_context', 'generic_secret']);
    assert.throws(() => lookupUpstreamType('envoy.extensions.transport_sockets.tls.v3.NoSuchThing'), /no message type/);
  });
});

// ---- helpers ----------------------------------------------------------------------------

/** The same document with every field name in its JSON (lowerCamel) form; map keys and Struct contents untouched. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function camelCase(v: unknown, parentKey = ''): any {
  if (Array.isArray(v)) return v.map((x) => camelCase(x, parentKey));
  if (typeof v !== 'object' || v === null) return v;
  const keepKeys = parentKey === 'typed_extension_protocol_options' || parentKey === 'metadata';
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const key = keepKeys || k.startsWith('@') ? k : k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    out[key] = camelCase(x, k);
  }
  return out;
}
