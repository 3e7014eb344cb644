// StreamSecrets conformance: each test is one rule of shared/ENVOY-CLIENT.md, played by
// a client that behaves as Envoy and decodes with the upstream protos.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pemOf, SECRET_TYPE } from '../support/fake-envoy.js';
import { useConformanceServer } from '../support/conformance-server.js';
import { eventually, metricTotal, tls, until } from '../support/test-server.js';

const ctx = useConformanceServer('web');

describe('StreamSecrets (state of the world)', () => {
  test('first request (node, type_url, empty version, no nonce) gets the current secret', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    const r = await s.response();
    assert.equal(r.type_url, SECRET_TYPE);
    assert.equal(r.secrets.length, 1);
    assert.equal(r.secrets[0]!.name, name);
    assert.equal(r.version_info, ctx.server.store.get(name)!.version);
    assert.ok(r.nonce.length > 0);
    // Every DataSource present sets a specifier (Envoy rejects one that does not).
    assert.equal(r.secrets[0]!.tls_certificate!.certificate_chain!.specifier, 'inline_bytes');
    assert.equal(r.secrets[0]!.tls_certificate!.private_key!.specifier, 'inline_bytes');
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.certificate_chain), ctx.fx.web1.certPem);
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.private_key), ctx.fx.web1.keyPem);
    s.cancel();
  });

  test('ACK gets no reply', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    const r = await s.response();
    s.ack(r);
    await until(() => ctx.server.registry.list().some((st) => st.names.get(name)?.acked === r.version_info), 5000, 'ACK recorded');
    await s.nothing();
    s.cancel();
  });

  test('rotation is pushed with a new version and nonce', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    const r1 = await s.response();
    s.ack(r1);
    ctx.server.put(name, tls(ctx.fx.web2));
    const r2 = await s.response();
    assert.notEqual(r2.version_info, r1.version_info);
    assert.notEqual(r2.nonce, r1.nonce);
    assert.equal(pemOf(r2.secrets[0]!.tls_certificate!.certificate_chain), ctx.fx.web2.certPem);
    s.cancel();
  });

  test('push only on change: identical content is not re-sent', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    s.ack(await s.response());
    assert.equal(ctx.server.put(name, tls(ctx.fx.web1)).outcome, 'unchanged');
    await s.nothing();
    s.cancel();
  });

  test('NACK: nothing re-sent, recorded in status and metrics; the next change is pushed', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    const r1 = await s.response();
    s.ack(r1);
    await until(() => ctx.server.registry.list().some((st) => st.names.get(name)?.acked === r1.version_info), 5000, 'ACK recorded');
    ctx.server.put(name, tls(ctx.fx.web2));
    const r2 = await s.response();
    const nacksBefore = await metricTotal(ctx.server.metrics.nacks);
    s.nack(r2, 'Failed to load private key from <inline>');
    await until(
      () => ctx.server.registry.list().some((st) => st.names.get(name)?.lastNack?.version === r2.version_info),
      5000,
      'NACK recorded',
    );
    await s.nothing();
    assert.equal(await metricTotal(ctx.server.metrics.nacks), nacksBefore + 1);
    const status = ctx.server.registry.list().find((st) => st.names.has(name))!;
    assert.equal(status.names.get(name)!.lastNack!.message, 'Failed to load private key from <inline>');
    assert.equal(status.names.get(name)!.acked, r1.version_info, 'client still holds the ACKed version');
    assert.ok(ctx.server.logs.some((l) => l['msg'] === 'client rejected secret (NACK)'));
    // The same rejected content put again is not a change: still nothing.
    ctx.server.put(name, tls(ctx.fx.web2));
    await s.nothing();
    // A changed secret is pushed.
    ctx.server.put(name, tls(ctx.fx.other));
    const r3 = await s.response();
    assert.notEqual(r3.version_info, r2.version_info);
    s.cancel();
  });

  test('stale nonce: a request carrying an old nonce is ignored', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    const r1 = await s.response();
    s.ack(r1);
    ctx.server.put(name, tls(ctx.fx.web2));
    const r2 = await s.response();
    const staleBefore = await metricTotal(ctx.server.metrics.staleNonces);
    // A request with r1's nonce (stale) asking for another name must not be served.
    const other = ctx.fresh(ctx.fx.other);
    s.request({ names: [name, other], version: r1.version_info, nonce: r1.nonce });
    await eventually(async () => (await metricTotal(ctx.server.metrics.staleNonces)) > staleBefore, 5000, 'stale nonce counted');
    await s.nothing();
    // With the current nonce it is.
    s.request({ names: [name, other], version: r2.version_info, nonce: r2.nonce });
    const r3 = await s.response();
    assert.deepEqual(
      r3.secrets.map((x) => x.name),
      [other],
    );
    s.cancel();
  });

  test('a secret that does not exist yet: nothing is sent until it appears, then it is pushed', async () => {
    const name = `later-${Date.now()}`;
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    await until(() => ctx.server.store.watcherCount(name) === 1, 5000, 'subscription');
    await s.nothing();
    ctx.server.put(name, tls(ctx.fx.web1));
    const r = await s.response();
    assert.equal(r.secrets[0]!.name, name);
    s.cancel();
  });

  test('reconnect: a first request carrying the last ACKed version and no nonce is answered with the current secret', async () => {
    const name = ctx.fresh();
    const s1 = ctx.envoy.sotw();
    s1.request({ names: [name] });
    const r1 = await s1.response();
    s1.ack(r1);
    s1.cancel();
    const s2 = ctx.envoy.sotw();
    s2.request({ names: [name], version: r1.version_info });
    const r2 = await s2.response();
    assert.equal(r2.version_info, r1.version_info);
    assert.equal(r2.secrets[0]!.name, name);
    s2.cancel();
  });

  test('node is taken from the first message; later requests may omit it', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    const r1 = await s.response();
    s.ack(r1); // no node on this one
    await until(() => ctx.server.registry.list().some((st) => st.names.get(name)?.acked === r1.version_info), 5000, 'ack');
    const st = ctx.server.registry.list().find((x) => x.names.has(name))!;
    assert.deepEqual({ id: st.node?.id, cluster: st.node?.cluster }, ctx.envoy.node);
    ctx.server.put(name, tls(ctx.fx.web2));
    await s.response();
    s.cancel();
  });

  test('one stream per secret: many concurrent streams on one connection each get their own secret', async () => {
    const names = Array.from({ length: 300 }, () => ctx.fresh());
    const streams = names.map((n) => {
      const s = ctx.envoy.sotw();
      s.request({ names: [n] });
      return s;
    });
    const responses = await Promise.all(streams.map((s) => s.response(15000)));
    responses.forEach((r, i) => assert.equal(r.secrets[0]!.name, names[i]));
    streams.forEach((s) => s.cancel());
  });

  test('the same name on two streams (certificate and validation context users) is answered on both; no de-duplication by node', async () => {
    const name = ctx.fresh();
    const a = ctx.envoy.sotw();
    const b = ctx.envoy.sotw();
    a.request({ names: [name] });
    b.request({ names: [name] });
    const [ra, rb] = await Promise.all([a.response(), b.response()]);
    assert.equal(ra.version_info, rb.version_info);
    a.cancel();
    b.cancel();
  });

  test('an empty name list unsubscribes: later changes are not pushed', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    const r = await s.response();
    s.ack(r);
    s.request({ names: [], version: r.version_info, nonce: r.nonce });
    await until(() => ctx.server.store.watcherCount(name) === 0, 5000, 'unsubscribe');
    ctx.server.put(name, tls(ctx.fx.web2));
    await s.nothing();
    s.cancel();
  });

  test('a response never lists a name twice', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name, name] });
    const r = await s.response();
    assert.deepEqual(
      r.secrets.map((x) => x.name),
      [name],
    );
    s.cancel();
  });

  test('a burst of updates within one tick becomes one push of the newest version', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    s.ack(await s.response());
    ctx.server.put(name, tls(ctx.fx.web2));
    ctx.server.put(name, tls(ctx.fx.other));
    const r = await s.response();
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.certificate_chain), ctx.fx.other.certPem);
    await s.nothing();
    s.cancel();
  });

  test('after any stream close the client reconnects; a burst of new streams all get their secrets', async () => {
    const names = Array.from({ length: 100 }, () => ctx.fresh());
    const first = names.map((n) => {
      const s = ctx.envoy.sotw();
      s.request({ names: [n] });
      return s;
    });
    const got = await Promise.all(first.map((s) => s.response()));
    first.forEach((s) => s.cancel());
    const again = names.map((n, i) => {
      const s = ctx.envoy.sotw();
      s.request({ names: [n], version: got[i]!.version_info });
      return s;
    });
    const got2 = await Promise.all(again.map((s) => s.response()));
    got2.forEach((r, i) => assert.equal(r.version_info, got[i]!.version_info));
    again.forEach((s) => s.cancel());
  });

  test('a deleted secret is not withdrawn in SotW: the stream stays and gets it again when it returns', async () => {
    const name = ctx.fresh();
    const s = ctx.envoy.sotw();
    s.request({ names: [name] });
    s.ack(await s.response());
    ctx.server.store.delete(name, { source: 'test', ref: name });
    await s.nothing();
    ctx.server.put(name, tls(ctx.fx.web2));
    const r = await s.response();
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.certificate_chain), ctx.fx.web2.certPem);
    s.cancel();
  });
});
