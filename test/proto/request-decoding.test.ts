// The server's own request decoders against the upstream protos: whatever a client
// encodes with Envoy's API (fields in any order, the big Node fields Envoy sends, fields
// from newer API versions), the fields the sessions use decode to what protobufjs reads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from '../../src/sds/request-decoding.js';
import { lookupUpstreamType } from '../support/envoy-protos.js';

const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
);
const node = fc.record(
  {
    id: text,
    cluster: text,
    user_agent_name: text,
    user_agent_version: text,
    // What a real Envoy adds: metadata, locality, extensions, client features.
    metadata: fc.constant({
      fields: { ISTIO_VERSION: { string_value: '1.24' }, LABELS: { struct_value: { fields: { app: { string_value: 'gw' } } } } },
    }),
    locality: fc.constant({ region: 'eu', zone: 'eu-1a' }),
    extensions: fc.array(fc.record({ name: text, category: text, type_descriptor: text }), { maxLength: 5 }),
    client_features: fc.array(text, { maxLength: 4 }),
  },
  { requiredKeys: [] },
);
const status = fc.record(
  { code: fc.integer({ min: -5, max: 20 }), message: text, details: fc.constant([{ type_url: 'x', value: Buffer.from([1, 2]) }]) },
  { requiredKeys: [] },
);

type NodeLike = { id?: string; cluster?: string; user_agent_name?: string; user_agent_version?: string } | null | undefined;
const norm = (n: NodeLike) =>
  n ? { id: n.id ?? '', cluster: n.cluster ?? '', ua: n.user_agent_name ?? '', uav: n.user_agent_version ?? '' } : null;
type StatusLike = { code?: number; message?: string } | null | undefined;
const normStatus = (s: StatusLike) => (s ? { code: s.code ?? 0, message: s.message ?? '' } : null);

test('DiscoveryRequest: our decoder reads what the upstream protos encode', () => {
  const T = lookupUpstreamType('envoy.service.discovery.v3.DiscoveryRequest');
  const request = fc.record(
    {
      version_info: text,
      node,
      resource_names: fc.array(text, { maxLength: 6 }),
      type_url: text,
      response_nonce: text,
      error_detail: status,
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(request, (o) => {
      const bytes = Buffer.from(T.encode(T.fromObject(o)).finish());
      const ours = decodeDiscoveryRequest(bytes);
      const theirs = T.toObject(T.decode(bytes), { defaults: true }) as Record<string, unknown>;
      assert.equal(ours.version_info, theirs['version_info']);
      assert.deepEqual(norm(ours.node), norm(o.node ? (theirs['node'] as NodeLike) : null));
      assert.deepEqual(ours.resource_names, theirs['resource_names']);
      assert.equal(ours.type_url, theirs['type_url']);
      assert.equal(ours.response_nonce, theirs['response_nonce']);
      assert.deepEqual(normStatus(ours.error_detail), normStatus(o.error_detail ? (theirs['error_detail'] as StatusLike) : null));
    }),
    { numRuns: 500 },
  );
});

test('DeltaDiscoveryRequest: our decoder reads what the upstream protos encode', () => {
  const T = lookupUpstreamType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const request = fc.record(
    {
      node,
      type_url: text,
      resource_names_subscribe: fc.array(text, { maxLength: 6 }),
      resource_names_unsubscribe: fc.array(text, { maxLength: 6 }),
      initial_resource_versions: fc.dictionary(text, text, { maxKeys: 4 }),
      response_nonce: text,
      error_detail: status,
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(request, (o) => {
      const bytes = Buffer.from(T.encode(T.fromObject(o)).finish());
      const ours = decodeDeltaDiscoveryRequest(bytes);
      const theirs = T.toObject(T.decode(bytes), { defaults: true }) as Record<string, unknown>;
      assert.deepEqual(norm(ours.node), norm(o.node ? (theirs['node'] as NodeLike) : null));
      assert.equal(ours.type_url, theirs['type_url']);
      assert.deepEqual(ours.resource_names_subscribe, theirs['resource_names_subscribe']);
      assert.deepEqual(ours.resource_names_unsubscribe, theirs['resource_names_unsubscribe']);
      assert.deepEqual({ ...ours.initial_resource_versions }, { ...(theirs['initial_resource_versions'] as Record<string, string>) });
      assert.equal(ours.response_nonce, theirs['response_nonce']);
      assert.deepEqual(normStatus(ours.error_detail), normStatus(o.error_detail ? (theirs['error_detail'] as StatusLike) : null));
    }),
    { numRuns: 500 },
  );
});

test('protobuf rules: last value wins, a repeated embedded message merges, fields in any order, unknown wire types skipped', () => {
  const field = (n: number, s: string) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([(n << 3) | 2, b.length]), b]);
  };
  const nodePart = (inner: Buffer) => Buffer.concat([Buffer.from([(2 << 3) | 2, inner.length]), inner]);
  const bytes = Buffer.concat([
    field(5, 'old-nonce'),
    Buffer.from([(9 << 3) | 0, 0x96, 0x01]), // an unknown varint field
    Buffer.from([(10 << 3) | 5, 1, 2, 3, 4]), // an unknown fixed32 field
    nodePart(field(1, 'node-a')),
    field(3, 'a'),
    field(5, 'new-nonce'),
    nodePart(field(2, 'cluster-b')),
    field(3, 'b'),
    Buffer.from([(1 << 3) | 0, 7]), // version_info with the wrong wire type: skipped as unknown
  ]);
  const r = decodeDiscoveryRequest(bytes);
  assert.equal(r.response_nonce, 'new-nonce');
  assert.deepEqual(r.resource_names, ['a', 'b']);
  assert.equal(r.node?.id, 'node-a');
  assert.equal(r.node?.cluster, 'cluster-b');
  assert.equal(r.version_info, '');
});

test('malformed input throws a plain Error: truncated fields, field number 0, groups', () => {
  for (const bad of [
    [0xff, 0xff, 0xff],
    [(3 << 3) | 2, 10, 0x61],
    [0, 0],
    [(3 << 3) | 3],
    [0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
  ]) {
    assert.throws(() => decodeDiscoveryRequest(Buffer.from(bad)), Error, JSON.stringify(bad));
    assert.throws(() => decodeDeltaDiscoveryRequest(Buffer.from(bad)), Error, JSON.stringify(bad));
  }
  assert.equal(Object.getPrototypeOf(decodeDeltaDiscoveryRequest(Buffer.alloc(0)).initial_resource_versions), null);
});
