// Fuzzing the request path a client controls, 10,000 cases per protocol: bytes (random,
// or a valid request encoded with the upstream protos and then mutated) go through the
// server's own request deserializer and into a session. The decoder either throws a
// plain Error or yields an object; the session then returns a verdict and never throws,
// and what it keeps (names, NACK messages, node, versions) stays within the limits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DeltaSession } from '../../src/sds/delta-session.js';
import { IdentityNames } from '../../src/sds/identity-names.js';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from '../../src/sds/messages.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from '../../src/sds/request-decoding.js';
import type { RequestLimits } from '../../src/sds/request-checks.js';
import { SotwSession } from '../../src/sds/sotw-session.js';
import { StreamStatus } from '../../src/sds/stream-status.js';
import { SECRET_TYPE_URL } from '../../src/sds/type-urls.js';
import { lookupUpstreamType } from '../support/envoy-protos.js';

const RUNS = 10_000;
const LIMITS: RequestLimits = { maxNamesPerStream: 20, maxNameLength: 64, maxErrorDetailLength: 128 };
const identity = { kind: 'unix' as const, principals: ['unix'], peer: 'fuzz' };

/** The decoders the server uses for these RPCs (src/sds/request-decoding.ts). */
function deserializer(rpc: 'StreamSecrets' | 'DeltaSecrets'): (b: Buffer) => unknown {
  return rpc === 'StreamSecrets' ? decodeDiscoveryRequest : decodeDeltaDiscoveryRequest;
}

const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  { weight: 1, arbitrary: fc.nat({ max: 5000 }).map((n) => 'x'.repeat(n)) },
);
const node = fc.option(fc.record({ id: text, cluster: text, user_agent_name: text }), { nil: undefined });
const status = fc.option(fc.record({ code: fc.integer({ min: 0, max: 16 }), message: text }), { nil: undefined });
const typeUrl = fc.oneof(fc.constant(SECRET_TYPE_URL), fc.constant(''), text);
const names = fc.array(fc.oneof(fc.constantFrom('a', 'b', 'c', ''), text), { maxLength: 30 });

/** Bytes to decode: a valid request (encoded upstream), mutated, or random. */
function inputs<T extends object>(typeName: string, valid: fc.Arbitrary<T>): fc.Arbitrary<Buffer> {
  const T = lookupUpstreamType(typeName);
  const encoded = valid.map((o) => Buffer.from(T.encode(T.fromObject(o)).finish()));
  const mutated = fc
    .tuple(encoded, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
    .map(([b, flips, cut]) => {
      const out = Buffer.from(b);
      for (const [at, v] of flips) if (out.length > 0) out[at % out.length] = v;
      return out.length > 0 && cut % 3 === 0 ? out.subarray(0, cut % out.length) : out;
    });
  return fc.oneof(
    encoded,
    mutated,
    fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
  );
}

/** What a session keeps about a client stays within the limits, whatever it was sent. */
function assertBounded(st: StreamStatus): void {
  const json = st.toJSON(() => undefined) as {
    node: { id: string; cluster: string } | null;
    names: Array<{ name: string; acked: string | null; lastNack: { message: string } | null }>;
  };
  assert.ok(json.names.length <= LIMITS.maxNamesPerStream);
  for (const n of json.names) {
    assert.ok(n.name.length <= LIMITS.maxNameLength, `name of ${n.name.length}`);
    assert.ok((n.acked ?? '').length < 200, `version of ${n.acked?.length}`);
    assert.ok((n.lastNack?.message ?? '').length < LIMITS.maxErrorDetailLength + 64, `NACK message of ${n.lastNack?.message.length}`);
  }
  assert.ok((json.node?.id ?? '').length < 300 && (json.node?.cluster ?? '').length < 300);
}

test(`StreamSecrets: ${RUNS} decoded or garbled requests never throw past the decoder, and state stays bounded`, () => {
  const decode = deserializer('StreamSecrets');
  const request = fc.record({
    version_info: text,
    node,
    resource_names: names,
    type_url: typeUrl,
    response_nonce: fc.constantFrom('', '1', '2', 'x'),
    error_detail: status,
  });
  const budget = new IdentityNames(50);
  fc.assert(
    fc.property(fc.array(inputs('envoy.service.discovery.v3.DiscoveryRequest', request), { minLength: 1, maxLength: 3 }), (batch) => {
      const st = new StreamStatus(1, 'sotw', identity);
      const session = new SotwSession(st, 'StreamSecrets', LIMITS, budget.budgetFor(identity));
      for (const bytes of batch) {
        let req: DiscoveryRequest;
        try {
          req = decode(bytes) as DiscoveryRequest;
        } catch (err) {
          assert.ok(err instanceof Error);
          continue;
        }
        const v = session.onRequest(req);
        assert.ok(['reject', 'stale', 'accept'].includes(v.type));
        assertBounded(st);
      }
      session.close();
      assert.equal(budget.count(identity), 0, 'a closed stream releases its names');
    }),
    { numRuns: RUNS },
  );
});

test(`DeltaSecrets: ${RUNS} decoded or garbled requests never throw past the decoder, and state stays bounded`, () => {
  const decode = deserializer('DeltaSecrets');
  const request = fc.record({
    node,
    type_url: typeUrl,
    resource_names_subscribe: names,
    resource_names_unsubscribe: names,
    initial_resource_versions: fc.dictionary(fc.oneof(fc.constantFrom('a', 'b'), text), text, { maxKeys: 5 }),
    response_nonce: fc.constantFrom('', '1', '2', 'x'),
    error_detail: status,
  });
  const budget = new IdentityNames(50);
  fc.assert(
    fc.property(fc.array(inputs('envoy.service.discovery.v3.DeltaDiscoveryRequest', request), { minLength: 1, maxLength: 3 }), (batch) => {
      const st = new StreamStatus(1, 'delta', identity);
      const session = new DeltaSession(st, 'DeltaSecrets', LIMITS, budget.budgetFor(identity));
      for (const bytes of batch) {
        let req: DeltaDiscoveryRequest;
        try {
          req = decode(bytes) as DeltaDiscoveryRequest;
        } catch (err) {
          assert.ok(err instanceof Error);
          continue;
        }
        const v = session.onRequest(req);
        assert.ok(['reject', 'accept'].includes(v.type));
        assertBounded(st);
      }
      session.close();
      assert.equal(budget.count(identity), 0, 'a closed stream releases its names');
    }),
    { numRuns: RUNS },
  );
});
