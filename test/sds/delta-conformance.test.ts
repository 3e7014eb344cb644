// DeltaSecrets conformance (incremental xDS), rules from shared/ENVOY-CLIENT.md.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pemOf } from '../support/fake-envoy.js';
import { useConformanceServer } from '../support/conformance-server.js';
import { tls, until } from '../support/test-server.js';

const ctx = useConformanceServer('d');

describe('DeltaSecrets (incremental)', () => {
  test('subscribe gets a Resource with name, version and the Secret of the right inner type', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.delta();
    s.request({ subscribe: [name] });
    const r = await s.response();
    assert.equal(r.resources.length, 1);
    assert.equal(r.resources[0]!.name, name);
    assert.equal(r.resources[0]!.version, ctx.server.store.get(name)!.version);
    assert.equal(r.resources[0]!.secret.name, name);
    assert.equal(pemOf(r.resources[0]!.secret.tls_certificate!.certificate_chain), ctx.fx.web1.certPem);
    assert.deepEqual(r.removed_resources, []);
    s.ack(r);
    await s.nothing();
    s.cancel();
  });

  test('rotation is pushed; identical content is not', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.delta();
    s.request({ subscribe: [name] });
    s.ack(await s.response());
    ctx.server.put(name, tls(ctx.fx.web1));
    await s.nothing();
    ctx.server.put(name, tls(ctx.fx.web2));
    const r = await s.response();
    assert.equal(pemOf(r.resources[0]!.secret.tls_certificate!.certificate_chain), ctx.fx.web2.certPem);
    s.cancel();
  });

  test('unsubscribe stops pushes; subscribing again re-sends even if the client had it', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.delta();
    s.request({ subscribe: [name] });
    const r1 = await s.response();
    s.ack(r1);
    s.request({ unsubscribe: [name] });
    await until(() => ctx.server.store.watcherCount(name) === 0, 5000, 'unsubscribed');
    ctx.server.put(name, tls(ctx.fx.web2));
    await s.nothing();
    s.request({ subscribe: [name] });
    const r2 = await s.response();
    assert.equal(r2.resources[0]!.name, name);
    assert.equal(pemOf(r2.resources[0]!.secret.tls_certificate!.certificate_chain), ctx.fx.web2.certPem);
    // Re-subscribing to a name the client holds at the current version re-sends too.
    s.ack(r2);
    s.request({ subscribe: [name] });
    const r3 = await s.response();
    assert.equal(r3.resources[0]!.version, r2.resources[0]!.version);
    s.cancel();
  });

  test('reconnect with initial_resource_versions: a current version is not re-sent, an old one is', async () => {
    const a = ctx.fresh();
    const b = ctx.fresh(ctx.fx.other);
    const s = ctx.envoy.delta();
    s.request({ subscribe: [a, b], initial: { [a]: ctx.server.store.get(a)!.version, [b]: 'old-version' } });
    const r = await s.response();
    assert.deepEqual(
      r.resources.map((x) => x.name),
      [b],
    );
    s.ack(r);
    await s.nothing();
    // Both are subscribed: a change to `a` is pushed.
    ctx.server.put(a, tls(ctx.fx.web2));
    const r2 = await s.response();
    assert.deepEqual(
      r2.resources.map((x) => x.name),
      [a],
    );
    s.cancel();
  });

  test('subscription changes apply even when the nonce is stale', async () => {
    const a = ctx.fresh();
    const b = ctx.fresh(ctx.fx.other);
    const s = ctx.envoy.delta();
    s.request({ subscribe: [a] });
    const r1 = await s.response();
    s.ack(r1);
    ctx.server.put(a, tls(ctx.fx.web2));
    const r2 = await s.response();
    // A request with r1's (already ACKed, now unknown) nonce that subscribes to b.
    s.request({ subscribe: [b], nonce: r1.nonce });
    const r3 = await s.response();
    assert.deepEqual(
      r3.resources.map((x) => x.name),
      [b],
    );
    s.ack(r2);
    s.ack(r3);
    s.cancel();
  });

  test('a missing secret gets nothing (no removed_resources) until it exists', async () => {
    const name = `d-missing-${Date.now()}`;
    const s = ctx.envoy.delta();
    s.request({ subscribe: [name] });
    await until(() => ctx.server.store.watcherCount(name) === 1, 5000, 'subscription');
    await s.nothing();
    ctx.server.put(name, tls(ctx.fx.web1));
    const r = await s.response();
    assert.deepEqual(
      r.resources.map((x) => x.name),
      [name],
    );
    assert.deepEqual(r.removed_resources, []);
    s.cancel();
  });

  test('removed_resources is sent only when a secret the stream holds is really deleted', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.delta();
    s.request({ subscribe: [name] });
    s.ack(await s.response());
    ctx.server.store.delete(name, { source: 'test', ref: name });
    const r = await s.response();
    assert.deepEqual(r.removed_resources, [name]);
    assert.equal(r.resources.length, 0);
    s.ack(r);
    ctx.server.put(name, tls(ctx.fx.web2));
    const r2 = await s.response();
    assert.deepEqual(
      r2.resources.map((x) => x.name),
      [name],
    );
    s.cancel();
  });

  test('NACK is recorded and the rejected version is not re-sent', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.delta();
    s.request({ subscribe: [name] });
    const r = await s.response();
    s.nack(r, 'Failed to load certificate chain from <inline>');
    await until(() => ctx.server.registry.list().some((st) => st.names.get(name)?.lastNack !== undefined), 5000, 'NACK');
    await s.nothing();
    const st = ctx.server.registry.list().find((x) => x.names.has(name))!;
    assert.equal(st.names.get(name)!.lastNack!.version, r.resources[0]!.version);
    s.cancel();
  });

  test('a response never carries a name twice', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.delta();
    s.request({ subscribe: [name, name] });
    const r = await s.response();
    assert.deepEqual(
      r.resources.map((x) => x.name),
      [name],
    );
    s.cancel();
  });
});
