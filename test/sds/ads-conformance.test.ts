// SDS over ADS, and FetchSecrets.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';
import { caBundle, makeFixtures, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

let server: TestServer;
let fx: Fixtures;
let envoy: FakeEnvoy;

before(async () => {
  fx = makeFixtures();
  server = await startTestServer();
  envoy = new FakeEnvoy(server.grpcAddress!);
  server.put('ads-a', tls(fx.web1));
  server.put('ads-b', tls(fx.other));
  server.put('ads-ca', caBundle(fx.ca));
});
after(async () => {
  envoy.close();
  await server.stop();
});

describe('SDS over ADS', () => {
  test('one stream carries all names; the list grows as listeners are processed; only new names are sent', async () => {
    const s = envoy.sotw({ ads: true });
    s.request({ names: ['ads-a'] });
    const r1 = await s.response();
    assert.deepEqual(
      r1.secrets.map((x) => x.name),
      ['ads-a'],
    );
    s.ack(r1, ['ads-a', 'ads-b', 'ads-ca']);
    const r2 = await s.response();
    assert.deepEqual(r2.secrets.map((x) => x.name).sort(), ['ads-b', 'ads-ca']);
    assert.equal(pemOf(r2.secrets.find((x) => x.name === 'ads-ca')!.validation_context!.trusted_ca), fx.ca.certPem);
    s.ack(r2, ['ads-a', 'ads-b', 'ads-ca']);
    await s.nothing();
    server.put('ads-b', tls(fx.web2));
    const r3 = await s.response();
    assert.deepEqual(
      r3.secrets.map((x) => x.name),
      ['ads-b'],
    );
    s.cancel();
  });

  test('a request for another type URL ends the stream with UNIMPLEMENTED and a clear message', async () => {
    const s = envoy.sotw({ ads: true });
    s.request({ names: ['x'], typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' });
    const err = await s.closedWith();
    assert.equal(err.code, status.UNIMPLEMENTED);
    assert.match(err.details, /envoy\.config\.cluster\.v3\.Cluster.*not served/);
  });

  test('delta ADS serves secrets', async () => {
    const s = envoy.delta({ ads: true });
    s.request({ subscribe: ['ads-a', 'ads-ca'] });
    const r = await s.response();
    assert.deepEqual(r.resources.map((x) => x.name).sort(), ['ads-a', 'ads-ca']);
    s.cancel();
  });
});

describe('FetchSecrets', () => {
  test('returns the current secrets', async () => {
    const r = await envoy.fetch(['ads-a', 'ads-ca']);
    assert.deepEqual(r.secrets.map((x) => x.name).sort(), ['ads-a', 'ads-ca']);
    assert.equal(r.version_info.length > 0, true);
  });

  test('an unknown name is NOT_FOUND', async () => {
    await assert.rejects(envoy.fetch(['nope']), (e: { code: number }) => e.code === status.NOT_FOUND);
  });
});
