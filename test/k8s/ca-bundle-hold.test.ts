// The union hold for CA bundles the server does not issue (kubernetes.caBundleHold), against
// a real API server: a trust-manager-style ConfigMap bundle is replaced in one step (old CA
// out, new CA in); the server serves old + new instead, says so in /status, and serves the
// bundle as written once every subscriber ACKed the union (release: acknowledged) or once
// holdSeconds passed (release: time). A name without a rule changes at once.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { pemOf, type SotwResponse } from '../support/fake-envoy.js';
import { makeCa } from '../support/openssl-certs.js';
import { clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, untilReady } from './kube-test-env.js';

const fingerprints = (r: SotwResponse) =>
  (pemOf(r.secrets[0]?.validation_context?.trusted_ca).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])
    .map((p) => new X509Certificate(p).fingerprint256)
    .sort();

test('a CA bundle that drops a CA is held as the union, and released by ACKs or by time', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const ns = await admin.namespace('hold');
  const [oldCa, newCa] = [makeCa('Bundle Old CA'), makeCa('Bundle New CA')];
  const fp = (c: { certPem: string }) => new X509Certificate(c.certPem).fingerprint256;
  for (const name of ['acked', 'timed', 'free']) await admin.putConfigMap(ns, name, { 'ca.crt': oldCa.certPem });
  const token = await admin.serviceAccountToken(ns, 'gw');
  const server = await startKubeSdsServer(cluster, {
    namespaces: [ns],
    kubernetes: {
      caBundleHold: [
        { names: [`configmap://${ns}/acked`], holdSeconds: 300, release: 'acknowledged' },
        { names: [`configmap://${ns}/timed`], holdSeconds: 1, release: 'time' },
      ],
    },
  });
  t.after(() => server.stop());
  await untilReady(server, 30_000);
  const gw = envoyWithToken(server, token, 'gw-1');
  t.after(() => gw.close());
  const streams = new Map<string, ReturnType<typeof gw.sotw>>();
  for (const name of ['acked', 'timed', 'free']) {
    const s = gw.sotw();
    s.request({ names: [`configmap://${ns}/${name}`] });
    const first = await s.response(15_000);
    assert.deepEqual(fingerprints(first), [fp(oldCa)]);
    s.ack(first);
    streams.set(name, s);
  }

  // One step: the old CA out, the new one in.
  for (const name of ['acked', 'timed', 'free']) await admin.putConfigMap(ns, name, { 'ca.crt': newCa.certPem });
  const union = [fp(oldCa), fp(newCa)].sort();

  const free = await streams.get('free')!.response(15_000);
  assert.deepEqual(fingerprints(free), [fp(newCa)], 'no rule: the bundle as written, at once');

  const acked = streams.get('acked')!;
  const held = await acked.response(15_000);
  assert.deepEqual(fingerprints(held), union, 'the union, not the bundle as written');
  const status = (await (await fetch(`http://${server.httpAddress!}/status`)).json()) as {
    caBundleHolds: Array<{ name: string; release: string; dropped: Array<{ sha256Fingerprint: string }> }>;
  };
  const shown = status.caBundleHolds.find((h) => h.name === `configmap://${ns}/acked`);
  assert.equal(shown?.release, 'acknowledged');
  assert.deepEqual(
    shown?.dropped.map((d) => d.sha256Fingerprint),
    [fp(oldCa)],
  );
  acked.ack(held);
  const released = await acked.response(15_000);
  assert.deepEqual(fingerprints(released), [fp(newCa)], 'every subscriber ACKed the union: the bundle as written');
  acked.ack(released);

  const timed = streams.get('timed')!;
  const heldTimed = await timed.response(15_000);
  assert.deepEqual(fingerprints(heldTimed), union);
  // Not ACKed: only the time releases it.
  const afterTime = await timed.response(15_000);
  assert.deepEqual(fingerprints(afterTime), [fp(newCa)], 'holdSeconds passed: the bundle as written');
  await eventually(
    async () => {
      const s = (await (await fetch(`http://${server.httpAddress!}/status`)).json()) as { caBundleHolds: unknown[] };
      return s.caBundleHolds.length === 0;
    },
    10_000,
    'no hold left in /status',
  );
});
