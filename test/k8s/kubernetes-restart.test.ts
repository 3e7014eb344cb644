// The API server going away while gateways are connected: streams stay up and keep the
// last secrets, /readyz says "degraded" (still ready), watches come back on their own (410
// re-list included), and a change made after the API server returns is pushed. Also a
// watch that goes silent without closing (black-holed network) is detected and restarted.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pemOf, type SotwResponse } from '../support/fake-envoy.js';
import { makeCa, makeLeaf, type Pair } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { FreezableProxy } from './freezable-proxy.js';
import {
  clusterOrSkip,
  envoyWithToken,
  eventually,
  KubeAdmin,
  kubeconfigWithToken,
  readyz,
  startKubeSdsServer,
  untilReady,
} from './kube-test-env.js';

const WEB = 'kubernetes://apps/web-tls';
const chainOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.tls_certificate?.certificate_chain);
const tlsData = (leaf: Pair): Record<string, string> => ({ 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem });

async function restartsByReason(server: TestServer): Promise<Record<string, number>> {
  const text = await server.metrics.registry.getSingleMetricAsString('envoy_sds_kubernetes_watch_restarts_total');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/reason="(\w+)"[^}]*\} (\d+)/g)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

test('kubernetes source: API server restarts and silent watches', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  const dir = mkdtempSync(join(tmpdir(), 'sds-k8s-restart-'));
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop();
    admin.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ca = makeCa('Apps CA');
  const leaves = [1, 2, 3, 4, 5].map((i) => makeLeaf(ca, [`v${i}.apps.example`]));
  await admin.ensureNamespace('apps');
  await admin.ensureNamespace('gateway');
  await admin.putSecret('apps', 'web-tls', tlsData(leaves[0]!));
  await admin.putConfigMap('apps', 'backend-ca', { 'ca.crt': ca.certPem });
  const gw = { namespace: 'gateway', name: 'gw' };
  const token = await admin.serviceAccountToken('gateway', 'gw');
  await admin.allowSecretRead('apps', gw, 'gw-reads-apps');
  await admin.allowConfigMapRead('apps', gw, 'gw-reads-apps-ca');
  await eventually(() => admin.canGet(gw, 'apps', 'web-tls'), 10_000, 'RBAC');

  await t.test('streams stay up through an API server and etcd restart; a later change is pushed', async (st) => {
    const server = await startKubeSdsServer(cluster, { namespaces: ['apps'] });
    servers.push(server);
    await untilReady(server);
    const envoy = envoyWithToken(server, token);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: [WEB] });
    const first = await s.response(10_000);
    assert.equal(chainOf(first), leaves[0]!.certPem);
    s.ack(first);
    const ca1 = envoy.sotw();
    ca1.request({ names: ['configmap://apps/backend-ca'] });
    ca1.ack(await ca1.response(10_000));

    for (const [round, crash] of [
      [1, false],
      [2, true],
    ] as const) {
      await cluster.stopApiServer({ crash });
      // Degraded, not unready: the last state is still served.
      await eventually(async () => (await readyz(server)).body.includes('unreachable'), 20_000, 'degraded readiness');
      const r = await readyz(server);
      assert.equal(r.status, 200, r.body);
      assert.match(r.body, /^ready \(degraded: .*Kubernetes API unreachable since/);
      assert.equal(s.ended, false, 'the open stream stays up');
      assert.equal(server.store.get(WEB)?.material.kind, 'tls_certificate');

      // A gateway that reconnects now (its token and RBAC answers are cached past their
      // TTL only because the API server is away) gets the last secrets.
      const late = envoyWithToken(server, token, `gateway-late-${round}`);
      st.after(() => late.close());
      const ls = late.sotw();
      ls.request({ names: [WEB] });
      const served = server.store.get(WEB)!.material;
      assert.equal(chainOf(await ls.response(10_000)), served.kind === 'tls_certificate' ? served.certificateChain : '');

      const begin = performance.now();
      await cluster.restart({ crash }); // etcd too; the API server starts on the same port
      st.diagnostic(
        `round ${round} (${crash ? 'SIGKILL' : 'SIGTERM'}): etcd + API server back in ${(performance.now() - begin).toFixed(0)} ms`,
      );
      await eventually(async () => (await readyz(server)).body === 'ready\n', 30_000, 'readiness without the degraded reason');
      assert.equal(s.ended, false);

      const leaf = leaves[round]!;
      const changed = performance.now();
      await admin.putSecret('apps', 'web-tls', tlsData(leaf));
      const pushed = await s.response(15_000);
      assert.equal(chainOf(pushed), leaf.certPem);
      s.ack(pushed);
      st.diagnostic(`round ${round}: change after the API server returned -> push ${(performance.now() - changed).toFixed(0)} ms`);
      await ca1.nothing();
    }
    st.diagnostic(`watch restarts by reason: ${JSON.stringify(await restartsByReason(server))}`);
    assert.doesNotMatch(server.logText(), /PRIVATE KEY/);
  });

  await t.test('a silent watch (black-holed connection) is restarted; degraded meanwhile; changes flow after', async (st) => {
    const url = new URL(cluster.server);
    const proxy = new FreezableProxy(url.hostname, Number(url.port));
    await proxy.start();
    st.after(() => proxy.stop());
    const server = await startKubeSdsServer(cluster, {
      namespaces: ['apps'],
      kubeconfigPath: kubeconfigWithToken(cluster, cluster.adminToken, dir, `https://127.0.0.1:${proxy.port}`),
    });
    servers.push(server);
    await untilReady(server);
    await eventually(() => server.store.get(WEB) !== undefined, 10_000, 'web-tls loaded');
    const envoy = envoyWithToken(server, token);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: [WEB] });
    s.ack(await s.response(10_000));

    const silentBefore = (await restartsByReason(server))['silent'] ?? 0;
    proxy.freeze();
    await eventually(async () => ((await restartsByReason(server))['silent'] ?? 0) > silentBefore, 30_000, 'a watch restarted as silent');
    await eventually(async () => (await readyz(server)).body.includes('unreachable'), 20_000, 'degraded readiness');
    assert.equal((await readyz(server)).status, 200);
    assert.equal(s.ended, false);

    proxy.thaw();
    await eventually(async () => (await readyz(server)).body === 'ready\n', 30_000, 'recovery');
    const leaf = leaves[4]!;
    await admin.putSecret('apps', 'web-tls', tlsData(leaf));
    assert.equal(chainOf(await s.response(15_000)), leaf.certPem);
    st.diagnostic(`watch restarts by reason: ${JSON.stringify(await restartsByReason(server))}`);
  });
});
