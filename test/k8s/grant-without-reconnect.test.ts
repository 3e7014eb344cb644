import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pemOf } from '../support/fake-envoy.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { clusterOrSkip, envoyWithToken, eventually, KubeAdmin, startKubeSdsServer, untilReady } from './kube-test-env.js';

const WEB = 'kubernetes://apps/web-tls';
// A stream denied at subscribe is served once a RoleBinding appears, without the client
// reconnecting; after the binding is deleted, changes are withheld until it returns.
test('open SotW and delta streams are served when a RoleBinding appears, withheld when it goes, without reconnecting', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  t.after(async () => {
    admin.close();
    await cluster.stop();
  });
  const ca = makeCa('CA');
  const [l1, l2] = [makeLeaf(ca, ['a.example']), makeLeaf(ca, ['b.example'])];
  await admin.ensureNamespace('apps');
  await admin.ensureNamespace('gateway');
  await admin.putSecret('apps', 'web-tls', { 'tls.crt': l1.certPem, 'tls.key': l1.keyPem });
  const gw = { namespace: 'gateway', name: 'gw' };
  const token = await admin.serviceAccountToken('gateway', 'gw');
  const server = await startKubeSdsServer(cluster, { namespaces: ['apps'] });
  t.after(() => server.stop());
  await untilReady(server);
  await eventually(() => server.store.get(WEB) !== undefined, 10_000, 'loaded');
  const envoy = envoyWithToken(server, token);
  t.after(() => envoy.close());
  const s = envoy.sotw();
  s.request({ names: [WEB] });
  const d = envoy.delta();
  d.request({ subscribe: [WEB] });
  await eventually(() => server.logs.filter((l) => l['msg'] === 'secret name denied to caller').length >= 2, 10_000, 'denials');
  await s.nothing();
  const start = performance.now();
  await admin.allowSecretRead('apps', gw, 'gw-web', ['web-tls']);
  const r = await s.response(15_000);
  const dr = await d.response(15_000);
  t.diagnostic(`existing SotW and Delta streams served ${(performance.now() - start).toFixed(0)} ms after the RoleBinding was created`);
  assert.equal(pemOf(r.secrets[0]?.tls_certificate?.certificate_chain), l1.certPem);
  assert.equal(dr.resources[0]?.name, WEB);
  s.ack(r);
  d.ack(dr);
  // Deleted: a change is withheld; re-created: the withheld version arrives with no new change.
  await admin.deleteRoleBinding('apps', 'gw-web');
  await eventually(async () => !(await admin.canGet(gw, 'apps', 'web-tls')), 10_000, 'rbac drop');
  await new Promise((res) => setTimeout(res, 2500)); // allow cache (2 s) runs out
  const from = server.logs.length;
  await admin.putSecret('apps', 'web-tls', { 'tls.crt': l2.certPem, 'tls.key': l2.keyPem });
  await eventually(() => server.logs.slice(from).some((l) => l['msg'] === 'secret name denied to caller'), 10_000, 'push denied');
  await s.nothing();
  await admin.create('/apis/rbac.authorization.k8s.io/v1/namespaces/apps/rolebindings', {
    metadata: { name: 'gw-web' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'gw-web' },
    subjects: [{ kind: 'ServiceAccount', name: 'gw', namespace: 'gateway' }],
  });
  const again = await s.response(15_000);
  assert.equal(pemOf(again.secrets[0]?.tls_certificate?.certificate_chain), l2.certPem);
  const dagain = await d.response(15_000);
  assert.equal(dagain.resources[0]?.version, server.store.get(WEB)!.version);
});
