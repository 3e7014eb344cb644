// DeltaSecrets conformance (incremental xDS), rules from shared/ENVOY-CLIENT.md.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';
import { makeFixtures, startTestServer, tls, until, type Fixtures, type TestServer } from '../support/test-server.js';

let server: TestServer;
let fx: Fixtures;
let envoy: FakeEnvoy;

before(async () => {
  fx = makeFixtures();
  server = await startTestServer();
  envoy = new FakeEnvoy(server.grpcAddress!);
});
after(async () => {
  envoy.close();
  await server.stop();
});

let seq = 0;
function fresh(pair = fx.web1): string {
  const name = `d-${++seq}`;
  server.put(name, tls(pair));
  return name;
}

describe('DeltaSecrets (incremental)', () => {
  test('subscribe gets a Resource with name, version and the Secret of the right inner type', async () => {
    const name = fresh();
    const s = envoy.delta();
    s.request({ subscribe: [name] });
    const r = await s.response();
    assert.equal(r.resources.length, 1);
    assert.equal(r.resources[0]!.name, name);
    assert.equal(r.resources[0]!.version, server.store.get(name)!.version);
    assert.equal(r.resources[0]!.secret.name, name);
    assert.equal(pemOf(r.resources[0]!.secret.tls_certificate!.certificate_chain), fx.web1.certPem);
    assert.deepEqual(r.removed_resources, []);
    s.ack(r);
    await s.nothing();
    s.cancel();
  });

  test('rotation is pushed; identical content is not', async () => {
    const name = fresh();
    const s = envoy.delta();
    s.request({ subscribe: [name] });
    s.ack(await s.response());
    server.put(name, tls(fx.web1));
    await s.nothing();
    server.put(name, tls(fx.web2));
    const r = await s.response();
    assert.equal(pemOf(r.resources[0]!.secret.tls_certificate!.certificate_chain), fx.web2.certPem);
    s.cancel();
  });

  test('unsubscribe stops pushes; subscribing again re-sends even if the client had it', async () => {
    const name = fresh();
    const s = envoy.delta();
    s.request({ subscribe: [name] });
    const r1 = await s.response();
    s.ack(r1);
    s.request({ unsubscribe: [name] });
    await until(() => server.store.watcherCount(name) === 0, 5000, 'unsubscribed');
    server.put(name, tls(fx.web2));
    await s.nothing();
    s.request({ subscribe: [name] });
    const r2 = await s.response();
    assert.equal(r2.resources[0]!.name, name);
    assert.equal(pemOf(r2.resources[0]!.secret.tls_certificate!.certificate_chain), fx.web2.certPem);
    // Re-subscribing to a name the client holds at the current version re-sends too.
    s.ack(r2);
    s.request({ subscribe: [name] });
    const r3 = await s.response();
    assert.equal(r3.resources[0]!.version, r2.resources[0]!.version);
    s.cancel();
  });

  test('reconnect with initial_resource_versions: a current version is not re-sent, an old one is', async () => {
    const a = fresh();
    const b = fresh(fx.other);
    const s = envoy.delta();
    s.request({ subscribe: [a, b], initial: { [a]: server.store.get(a)!.version, [b]: 'old-version' } });
    const r = await s.response();
    assert.deepEqual(r.resources.map((x) => x.name), [b]);
    s.ack(r);
    await s.nothing();
    // Both are subscribed: a change to `a` is pushed.
    server.put(a, tls(fx.web2));
    const r2 = await s.response();
    assert.deepEqual(r2.resources.map((x) => x.name), [a]);
    s.cancel();
  });

  test('subscription changes apply even when the nonce is stale', async () => {
    const a = fresh();
    const b = fresh(fx.other);
    const s = envoy.delta();
    s.request({ subscribe: [a] });
    const r1 = await s.response();
    s.ack(r1);
    server.put(a, tls(fx.web2));
    const r2 = await s.response();
    // A request with r1's (already ACKed, now unknown) nonce that subscribes to b.
    s.request({ subscribe: [b], nonce: r1.nonce });
    const r3 = await s.response();
    assert.deepEqual(r3.resources.map((x) => x.name), [b]);
    s.ack(r2);
    s.ack(r3);
    s.cancel();
  });

  test('a missing secret gets nothing (no removed_resources) until it exists', async () => {
    const name = `d-missing-${++seq}`;
    const s = envoy.delta();
    s.request({ subscribe: [name] });
    await until(() => server.store.watcherCount(name) === 1, 5000, 'subscription');
    await s.nothing();
    server.put(name, tls(fx.web1));
    const r = await s.response();
    assert.deepEqual(r.resources.map((x) => x.name), [name]);
    assert.deepEqual(r.removed_resources, []);
    s.cancel();
  });

  test('removed_resources is sent only when a secret the stream holds is really deleted', async () => {
    const name = fresh();
    const s = envoy.delta();
    s.request({ subscribe: [name] });
    s.ack(await s.response());
    server.store.delete(name, { source: 'test', ref: name });
    const r = await s.response();
    assert.deepEqual(r.removed_resources, [name]);
    assert.equal(r.resources.length, 0);
    s.ack(r);
    server.put(name, tls(fx.web2));
    const r2 = await s.response();
    assert.deepEqual(r2.resources.map((x) => x.name), [name]);
    s.cancel();
  });

  test('NACK is recorded and the rejected version is not re-sent', async () => {
    const name = fresh();
    const s = envoy.delta();
    s.request({ subscribe: [name] });
    const r = await s.response();
    s.nack(r, 'Failed to load certificate chain from <inline>');
    await until(() => server.registry.list().some((st) => st.names.get(name)?.lastNack !== undefined), 5000, 'NACK');
    await s.nothing();
    const st = server.registry.list().find((x) => x.names.has(name))!;
    assert.equal(st.names.get(name)!.lastNack!.version, r.resources[0]!.version);
    s.cancel();
  });

  test('a response never carries a name twice', async () => {
    const name = fresh();
    const s = envoy.delta();
    s.request({ subscribe: [name, name] });
    const r = await s.response();
    assert.deepEqual(r.resources.map((x) => x.name), [name]);
    s.cancel();
  });
});
