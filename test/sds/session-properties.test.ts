// Property tests on the protocol state machines (no I/O): whatever sequence of requests,
// ACKs, NACKs and store changes arrives, a stream never carries a name it is not
// subscribed to, never re-sends a version it already sent for that name, and always
// ends holding the current version of every subscribed name it was allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DeltaSession } from '../../src/sds/delta-session.js';
import { DEFAULT_REQUEST_LIMITS } from '../../src/sds/request-checks.js';
import { SotwSession } from '../../src/sds/sotw-session.js';
import { StreamStatus } from '../../src/sds/stream-status.js';
import { SECRET_TYPE_URL } from '../../src/sds/type-urls.js';
import type { StoredSecret } from '../../src/store/secret-material.js';
import { lookupUpstreamType } from '../support/envoy-protos.js';

const NAMES = ['a', 'b', 'c'];
const identity = { kind: 'loopback' as const, principals: ['loopback'], peer: '127.0.0.1:1' };

function secret(name: string, version: string): StoredSecret {
  return {
    name,
    kind: 'tls_certificate',
    version,
    material: { kind: 'tls_certificate', certificateChain: `chain-${version}`, privateKey: 'k' },
    origin: { source: 'test', ref: name },
    facts: { subject: '', notBefore: new Date(0), notAfter: new Date(0), dnsNames: [], sha256Fingerprint: '' },
    warnings: [],
    updatedAt: new Date(0),
  };
}

type Step =
  { t: 'subscribe'; names: string[] } | { t: 'ack' } | { t: 'nack' } | { t: 'stale' } | { t: 'update'; name: string; version: string };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ t: fc.constant('subscribe' as const), names: fc.subarray(NAMES) }),
  fc.constant({ t: 'ack' as const }),
  fc.constant({ t: 'nack' as const }),
  fc.constant({ t: 'stale' as const }),
  fc.record({ t: fc.constant('update' as const), name: fc.constantFrom(...NAMES), version: fc.constantFrom('v1', 'v2', 'v3') }),
);

test('SotW session: sends only subscribed names, never the same version twice in a row, converges', () => {
  const Resp = lookupUpstreamType('envoy.service.discovery.v3.DiscoveryResponse');
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      const s = new SotwSession(new StreamStatus(1, 'sotw', identity), 'StreamSecrets', DEFAULT_REQUEST_LIMITS);
      const store = new Map<string, StoredSecret>();
      let names: string[] = [];
      let lastNonce = '';
      const lastSent = new Map<string, string>();
      const send = (list: StoredSecret[]) => {
        if (list.length === 0) return;
        const r = Resp.toObject(Resp.decode(Buffer.concat(s.buildResponse(list)))) as { nonce: string; resources: unknown[] };
        assert.equal(r.resources.length, list.length);
        lastNonce = r.nonce;
        for (const x of list) {
          assert.ok(s.isSubscribed(x.name), 'sent an unsubscribed name');
          assert.notEqual(lastSent.get(x.name), x.version, 'sent the same version twice');
          lastSent.set(x.name, x.version);
        }
      };
      const req = (extra: Record<string, unknown>) => s.onRequest({ type_url: SECRET_TYPE_URL, resource_names: names, ...extra });
      for (const st of steps) {
        if (st.t === 'subscribe') {
          names = st.names;
          const v = req({ response_nonce: lastNonce });
          if (v.type !== 'accept') continue;
          for (const n of v.removed) lastSent.delete(n);
          send(v.added.map((n) => store.get(n)).filter((x): x is StoredSecret => !!x && s.needsPush(x)));
        } else if (st.t === 'ack') {
          assert.notEqual(req({ response_nonce: lastNonce }).type, 'reject');
        } else if (st.t === 'nack') {
          req({ response_nonce: lastNonce, error_detail: { code: 13, message: 'no' } });
        } else if (st.t === 'stale') {
          if (lastNonce !== '') assert.equal(req({ response_nonce: 'stale-' + lastNonce }).type, 'stale');
        } else {
          store.set(st.name, secret(st.name, st.version));
          const cur = store.get(st.name)!;
          if (s.needsPush(cur)) send([cur]);
        }
      }
      for (const n of s.subscriptions()) {
        const cur = store.get(n);
        if (cur) assert.equal(lastSent.get(n), cur.version, `stream does not hold the current ${n}`);
      }
    }),
    { numRuns: 300 },
  );
});

test('delta session: removals only for names that were sent; subscriptions apply with any nonce', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.subarray(NAMES), fc.subarray(NAMES), fc.boolean()), { maxLength: 20 }), (steps) => {
      const s = new DeltaSession(new StreamStatus(1, 'delta', identity), 'DeltaSecrets', DEFAULT_REQUEST_LIMITS);
      const subscribed = new Set<string>();
      for (const [sub, unsub, staleNonce] of steps) {
        const v = s.onRequest({
          type_url: SECRET_TYPE_URL,
          resource_names_subscribe: sub,
          resource_names_unsubscribe: unsub,
          response_nonce: staleNonce ? 'nope' : '',
        });
        assert.equal(v.type, 'accept');
        for (const n of sub) subscribed.add(n);
        for (const n of unsub) subscribed.delete(n);
        for (const n of NAMES) assert.equal(s.isSubscribed(n), subscribed.has(n));
        for (const n of NAMES) {
          // Nothing was ever sent: no removal may be announced.
          assert.equal(s.needsRemoval(n), false);
        }
      }
    }),
    { numRuns: 300 },
  );
});
