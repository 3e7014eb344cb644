// Our proto/ subset against the upstream Envoy API (from @grpc/grpc-js-xds): every
// message we use encodes with ours and decodes with upstream's, and back; the bytes the
// server assembles by hand decode with upstream's; the service paths match.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type protobuf from 'protobufjs';
import { sdsPackageDefinition, sdsType } from '../../src/sds/protos.js';
import { SotwSession } from '../../src/sds/sotw-session.js';
import { DeltaSession } from '../../src/sds/delta-session.js';
import { StreamStatus } from '../../src/sds/stream-status.js';
import { DEFAULT_REQUEST_LIMITS } from '../../src/sds/request-checks.js';
import { SECRET_TYPE_URL } from '../../src/sds/type-urls.js';
import type { StoredSecret } from '../../src/store/secret-material.js';
import { lookupUpstreamService, lookupUpstreamType } from '../support/envoy-protos.js';

const node = {
  id: 'gw-1',
  cluster: 'gateway',
  metadata: { fields: { region: { stringValue: 'eu' } } },
  locality: { region: 'eu', zone: 'a', sub_zone: 'b' },
  user_agent_name: 'envoy',
  user_agent_build_version: { version: { major_number: 1, minor_number: 36, patch: 2 } },
  client_features: ['envoy.lb.does_not_support_overprovisioning'],
  extensions: [{ name: 'envoy.transport_sockets.tls', category: 'envoy.transport_sockets.downstream', type_urls: ['x'] }],
};
const anySecret = (s: Record<string, unknown>) => ({
  type_url: SECRET_TYPE_URL,
  value: Buffer.from(
    sdsType('envoy.extensions.transport_sockets.tls.v3.Secret')
      .encode(sdsType('envoy.extensions.transport_sockets.tls.v3.Secret').fromObject(s))
      .finish(),
  ),
});
const tlsSecret = {
  name: 'kubernetes://apps/web',
  tls_certificate: {
    certificate_chain: { inline_bytes: Buffer.from('-----BEGIN CERTIFICATE-----\n...') },
    private_key: { inline_bytes: Buffer.from('-----BEGIN PRIVATE KEY-----\n...') },
    ocsp_staple: { inline_bytes: Buffer.from([1, 2, 3]) },
  },
};
const caSecret = {
  name: 'kubernetes://apps/web-cacert',
  validation_context: {
    trusted_ca: { inline_string: 'ca pem' },
    crl: { filename: '/etc/crl.pem' },
    allow_expired_certificate: true,
    trust_chain_verification: 1,
    max_verify_depth: { value: 3 },
  },
};

const samples: Array<[string, Record<string, unknown>]> = [
  ['envoy.config.core.v3.Node', node],
  ['envoy.extensions.transport_sockets.tls.v3.Secret', tlsSecret],
  ['envoy.extensions.transport_sockets.tls.v3.Secret', caSecret],
  ['envoy.extensions.transport_sockets.tls.v3.Secret', { name: 'g', generic_secret: { secret: { environment_variable: 'X' } } }],
  [
    'envoy.extensions.transport_sockets.tls.v3.Secret',
    { name: 't', session_ticket_keys: { keys: [{ inline_bytes: Buffer.alloc(80, 7) }] } },
  ],
  ['google.rpc.Status', { code: 13, message: 'Failed to load private key from <inline>' }],
  [
    'envoy.service.discovery.v3.DiscoveryRequest',
    {
      version_info: 'v1',
      node,
      resource_names: ['a', 'b'],
      type_url: SECRET_TYPE_URL,
      response_nonce: '7',
      error_detail: { code: 13, message: 'bad' },
    },
  ],
  [
    'envoy.service.discovery.v3.DiscoveryResponse',
    {
      version_info: 'v2',
      resources: [anySecret(tlsSecret)],
      canary: true,
      type_url: SECRET_TYPE_URL,
      nonce: '8',
      control_plane: { identifier: 'envoy-sds' },
    },
  ],
  [
    'envoy.service.discovery.v3.DeltaDiscoveryRequest',
    {
      node,
      type_url: SECRET_TYPE_URL,
      resource_names_subscribe: ['a'],
      resource_names_unsubscribe: ['b'],
      initial_resource_versions: { a: 'v1' },
      response_nonce: '3',
      error_detail: { code: 13, message: 'x' },
    },
  ],
  [
    'envoy.service.discovery.v3.DeltaDiscoveryResponse',
    {
      system_version_info: 's1',
      resources: [
        {
          name: 'a',
          version: 'v1',
          resource: anySecret(caSecret),
          aliases: ['al'],
          ttl: { seconds: 5 },
          cache_control: { do_not_cache: true },
        },
      ],
      type_url: SECRET_TYPE_URL,
      removed_resources: ['gone'],
      nonce: '4',
      control_plane: { identifier: 'x' },
    },
  ],
];

function roundTrip(from: protobuf.Type, to: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const bytes = from.encode(from.fromObject(obj)).finish();
  return to.toObject(to.decode(bytes), { bytes: Buffer, longs: String, defaults: false, oneofs: false });
}

const norm = (t: protobuf.Type, o: Record<string, unknown>) =>
  t.toObject(t.fromObject(o), { bytes: Buffer, longs: String, defaults: false, oneofs: false });

/** What the upstream protos decode our responses to (the fields these tests read). */
interface Decoded {
  name: string;
  type: string;
  version_info: string;
  type_url: string;
  nonce: string;
  removed_resources: string[];
  resources: Array<{ type_url: string; value: Uint8Array; name: string; version: string; resource: { type_url: string } }>;
  tls_certificate?: { certificate_chain: { inline_bytes: string } };
}
describe('wire compatibility with upstream Envoy protos', () => {
  for (const [typeName, obj] of samples) {
    test(`${typeName}: ours -> upstream and upstream -> ours`, () => {
      const ours = sdsType(typeName);
      const theirs = lookupUpstreamType(typeName);
      assert.deepEqual(roundTrip(ours, theirs, obj), norm(theirs, obj));
      assert.deepEqual(roundTrip(theirs, ours, obj), norm(ours, obj));
    });
  }

  test('every field of ours exists upstream with the same number and type', () => {
    for (const typeName of new Set(
      samples
        .map(([t]) => t)
        .concat([
          'envoy.service.discovery.v3.Resource',
          'envoy.extensions.transport_sockets.tls.v3.TlsCertificate',
          'envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext',
          'envoy.config.core.v3.DataSource',
        ]),
    )) {
      const ours = sdsType(typeName);
      const theirs = lookupUpstreamType(typeName);
      for (const f of ours.fieldsArray) {
        const u = theirs.fields[f.name];
        assert.ok(u, `${typeName}.${f.name} missing upstream`);
        assert.equal(u.id, f.id, `${typeName}.${f.name} number`);
        assert.equal(u.type.split('.').pop(), f.type.split('.').pop(), `${typeName}.${f.name} type`);
        assert.equal(u.repeated, f.repeated, `${typeName}.${f.name} repeated`);
      }
    }
  });

  test('service method paths match upstream', () => {
    const def = sdsPackageDefinition();
    for (const svc of ['envoy.service.secret.v3.SecretDiscoveryService', 'envoy.service.discovery.v3.AggregatedDiscoveryService']) {
      const upstream = lookupUpstreamService(svc);
      const ours = def[svc] as Record<string, { path: string; requestStream: boolean; responseStream: boolean }>;
      for (const m of upstream.methodsArray) {
        assert.equal(ours[m.name]?.path, `/${svc}/${m.name}`);
        assert.equal(ours[m.name]?.requestStream, Boolean(m.requestStream));
        assert.equal(ours[m.name]?.responseStream, Boolean(m.responseStream));
      }
    }
  });

  const stored = (name: string, version: string): StoredSecret => ({
    name,
    kind: 'tls_certificate',
    version,
    material: { kind: 'tls_certificate', certificateChain: 'CHAIN', privateKey: 'KEY' },
    origin: { source: 'test', ref: name },
    facts: { subject: 'CN=x', notBefore: new Date(), notAfter: new Date(), dnsNames: [], sha256Fingerprint: '' },
    warnings: [],
    updatedAt: new Date(),
  });

  test('hand-assembled SotW responses (one and several secrets) decode with upstream', () => {
    const session = new SotwSession(
      new StreamStatus(1, 'sotw', { kind: 'loopback', principals: [], peer: '' }),
      'StreamSecrets',
      DEFAULT_REQUEST_LIMITS,
    );
    const Resp = lookupUpstreamType('envoy.service.discovery.v3.DiscoveryResponse');
    const Secret = lookupUpstreamType('envoy.extensions.transport_sockets.tls.v3.Secret');
    const one = Resp.toObject(Resp.decode(Buffer.concat(session.buildResponse([stored('a', 'v1')])))) as Decoded;
    assert.equal(one['version_info'], 'v1');
    assert.equal(one['type_url'], SECRET_TYPE_URL);
    assert.equal(one['nonce'], '1');
    assert.equal(one['resources'].length, 1);
    assert.equal(one['resources'][0]!.type_url, SECRET_TYPE_URL);
    const secret = Secret.toObject(Secret.decode(one['resources'][0]!.value), { bytes: String, oneofs: true }) as Decoded;
    assert.equal(secret['name'], 'a');
    assert.equal(secret['type'], 'tls_certificate');
    assert.equal(Buffer.from(secret['tls_certificate']!.certificate_chain.inline_bytes, 'base64').toString(), 'CHAIN');
    const two = Resp.toObject(Resp.decode(Buffer.concat(session.buildResponse([stored('a', 'v1'), stored('b', 'v2')])))) as Decoded;
    assert.equal(two['resources'].length, 2);
    assert.equal(two['nonce'], '2');
    assert.equal(two['version_info'].length, 16);
  });

  test('hand-assembled delta responses decode with upstream', () => {
    const session = new DeltaSession(
      new StreamStatus(1, 'delta', { kind: 'loopback', principals: [], peer: '' }),
      'DeltaSecrets',
      DEFAULT_REQUEST_LIMITS,
    );
    const Resp = lookupUpstreamType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
    const r = Resp.toObject(Resp.decode(Buffer.concat(session.buildResponse([stored('a', 'v1')], ['gone'])))) as Decoded;
    assert.equal(r['type_url'], SECRET_TYPE_URL);
    assert.deepEqual(r['removed_resources'], ['gone']);
    assert.equal(r['resources'][0]!.name, 'a');
    assert.equal(r['resources'][0]!.version, 'v1');
    assert.equal(r['resources'][0]!.resource.type_url, SECRET_TYPE_URL);
    assert.equal(r['nonce'], '1');
  });
});
