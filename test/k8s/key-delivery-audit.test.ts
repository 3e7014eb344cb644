// The private-key audit trail, against a real kube-apiserver: the first delivery of each
// key version to each identity is one line (identity, secret, version, time) on the audit
// logger, whatever the number of streams, reconnects and fetches; CA-only names add none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, untilReady } from './kube-test-env.js';

const WEB = 'kubernetes://apps/web-tls';

test('the first delivery of each private-key version to each identity is one audit line', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const ca = makeCa('CA');
  const [l1, l2] = [makeLeaf(ca, ['a.example']), makeLeaf(ca, ['b.example'])];
  await admin.ensureNamespace('apps');
  await admin.ensureNamespace('gateway');
  await admin.putSecret('apps', 'web-tls', { 'tls.crt': l1.certPem, 'tls.key': l1.keyPem, 'ca.crt': ca.certPem });
  const tokens: Record<string, string> = {};
  for (const sa of ['gw', 'gw2']) {
    tokens[sa] = await admin.serviceAccountToken('gateway', sa);
    await admin.allowSecretRead('apps', { namespace: 'gateway', name: sa }, `${sa}-web`, ['web-tls']);
    await eventually(() => admin.canGet({ namespace: 'gateway', name: sa }, 'apps', 'web-tls'), 10_000, 'RBAC');
  }
  const server = await startKubeSdsServer(cluster, { namespaces: ['apps'] });
  t.after(() => server.stop());
  await untilReady(server);
  await eventually(() => server.store.get(WEB) !== undefined, 10_000, 'loaded');
  const lines = (identity: string, version?: string) =>
    server.audit.filter(
      (l) =>
        l['identity'] === `serviceaccount:system:serviceaccount:gateway:${identity}` &&
        l['secret'] === WEB &&
        (version === undefined || l['version'] === version),
    );

  const envoy = envoyWithToken(server, tokens['gw']);
  t.after(() => envoy.close());
  const v1 = server.store.get(WEB)!.version;
  const s = envoy.sotw();
  s.request({ names: [WEB] });
  s.ack(await s.response(10_000));
  // A second stream (delta), a fetch and the CA name: the same version, no new line.
  const d = envoy.delta();
  d.request({ subscribe: [WEB] });
  d.ack(await d.response(10_000));
  await envoy.fetch([WEB]);
  const ca1 = envoy.sotw();
  ca1.request({ names: [`${WEB}-cacert`] });
  await ca1.response(10_000);
  assert.equal(lines('gw').length, 1, JSON.stringify(server.audit));
  const line = lines('gw')[0]!;
  assert.equal(line['version'], v1);
  assert.equal(line['log'], 'audit');
  assert.ok(typeof line['time'] === 'string' && !Number.isNaN(Date.parse(line['time'])));
  assert.ok(!server.audit.some((l) => String(l['secret']).endsWith('-cacert')), 'CA-only names are not audited');

  // A new version: one more line (two streams receive it).
  await admin.putSecret('apps', 'web-tls', { 'tls.crt': l2.certPem, 'tls.key': l2.keyPem, 'ca.crt': ca.certPem });
  s.ack(await s.response(10_000));
  d.ack(await d.response(10_000));
  const v2 = server.store.get(WEB)!.version;
  assert.notEqual(v2, v1);
  assert.equal(lines('gw', v2).length, 1);
  assert.equal(lines('gw').length, 2);

  // Another identity gets its own line for the same version.
  const other = envoyWithToken(server, tokens['gw2'], 'gateway-2');
  t.after(() => other.close());
  const o = other.sotw();
  o.request({ names: [WEB] });
  await o.response(10_000);
  assert.equal(lines('gw2', v2).length, 1);
  // The audit trail is its own logger: not in the main log, and never the key.
  assert.ok(!server.logs.some((l) => l['msg'] === 'private key delivered'));
  assert.ok(!JSON.stringify(server.audit).includes('PRIVATE KEY'));
});
