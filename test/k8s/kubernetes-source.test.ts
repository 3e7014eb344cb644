// The Kubernetes source against a real kube-apiserver: Secrets and ConfigMaps reach Envoy
// streams under their Kubernetes names, updates are pushed, bad content is rejected with
// an Event while the last good version stays, and the server runs with the ServiceAccount
// and RBAC of deploy/ (so those grants are proven sufficient).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { pemOf, type SotwResponse } from '../support/fake-envoy.js';
import { makeCa, makeLeaf, type Pair } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
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

const chainOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.tls_certificate?.certificate_chain);
const caOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.validation_context?.trusted_ca);
const tlsData = (leaf: Pair, ca?: Pair): Record<string, string> => ({
  'tls.crt': leaf.certPem,
  'tls.key': leaf.keyPem,
  ...(ca ? { 'ca.crt': ca.certPem } : {}),
});

test('kubernetes source: Secrets and ConfigMaps to Envoy streams', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const dir = mkdtempSync(join(tmpdir(), 'sds-k8s-source-'));
  const admin = new KubeAdmin(cluster);
  let server: TestServer | undefined;
  t.after(async () => {
    await server?.stop();
    admin.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ca1 = makeCa('Apps CA 1');
  const ca2 = makeCa('Apps CA 2');
  const ca3 = makeCa('Apps CA 3');
  const web1 = makeLeaf(ca1, ['web.apps.example']);
  const web2 = makeLeaf(ca1, ['web.apps.example', 'www.apps.example']);
  const web3 = makeLeaf(ca2, ['web.apps.example']);

  // The server authenticates as the envoy-sds ServiceAccount of deploy/, not as admin.
  await admin.ensureNamespace('envoy-sds');
  await admin.ensureNamespace('apps');
  await admin.ensureNamespace('gateway');
  const serverToken = await admin.serviceAccountToken('envoy-sds', 'envoy-sds', [cluster.serviceAccountIssuer]);
  const kubeconfig = kubeconfigWithToken(cluster, serverToken, dir);
  const gatewayToken = await admin.serviceAccountToken('gateway', 'gw');
  await admin.allowSecretRead('apps', { namespace: 'gateway', name: 'gw' }, 'gw-reads-apps');
  await admin.allowConfigMapRead('apps', { namespace: 'gateway', name: 'gw' }, 'gw-reads-apps-ca');

  await t.test('not ready before the first list (RBAC missing), ready once deploy/rbac.yaml is applied', async () => {
    server = await startKubeSdsServer(cluster, {
      kubeconfigPath: kubeconfig,
      kubernetes: { configMapKeys: ['ca.crt', 'trust-bundle.pem'] },
    });
    // Forbidden until the ClusterRole exists: every list fails, so the server is not ready.
    await eventually(async () => (await readyz(server!)).body.includes('forbidden'), 10_000, 'a forbidden list reported by /readyz');
    const before = await readyz(server);
    assert.equal(before.status, 503, before.body);
    assert.match(before.body, /waiting for the first list/);

    for (const doc of parseAllDocuments(readFileSync('deploy/rbac.yaml', 'utf8'))) {
      const obj = doc.toJS() as { kind: string; metadata: { namespace?: string } };
      const collection = {
        ServiceAccount: `/api/v1/namespaces/${obj.metadata.namespace}/serviceaccounts`,
        ClusterRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
        ClusterRoleBinding: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
        Role: `/apis/rbac.authorization.k8s.io/v1/namespaces/${obj.metadata.namespace}/roles`,
        RoleBinding: `/apis/rbac.authorization.k8s.io/v1/namespaces/${obj.metadata.namespace}/rolebindings`,
      }[obj.kind];
      assert.ok(collection, `unexpected kind ${obj.kind} in deploy/rbac.yaml`);
      await admin.create(collection, obj, true);
    }
    const body = await untilReady(server);
    assert.equal(body, 'ready\n');
  });

  await t.test('a TLS Secret is served as kubernetes://apps/web-tls', async (st) => {
    await admin.putSecret('apps', 'web-tls', tlsData(web1, ca1));
    const envoy = envoyWithToken(server!, gatewayToken);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: ['kubernetes://apps/web-tls'] });
    const r = await s.response(10_000);
    assert.equal(r.secrets[0]?.name, 'kubernetes://apps/web-tls');
    assert.equal(chainOf(r), web1.certPem);
    assert.equal(pemOf(r.secrets[0]?.tls_certificate?.private_key), web1.keyPem);
    assert.equal(server!.store.get('kubernetes://apps/web-tls')?.origin.ref, 'apps/web-tls');
  });

  await t.test('an update of the Secret is pushed as a new version (latency reported)', async (st) => {
    const envoy = envoyWithToken(server!, gatewayToken);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: ['kubernetes://apps/web-tls'] });
    let last = await s.response(10_000);
    s.ack(last);
    const latencies: number[] = [];
    const leaves = [web2, web1, web2, web1, web2];
    for (const leaf of leaves) {
      const started = performance.now();
      await admin.putSecret('apps', 'web-tls', tlsData(leaf, ca1));
      const r = await s.response(10_000);
      latencies.push(performance.now() - started);
      assert.equal(chainOf(r), leaf.certPem);
      assert.notEqual(r.version_info, last.version_info);
      s.ack(r);
      last = r;
    }
    latencies.sort((a, b) => a - b);
    t.diagnostic(
      `update-to-push latency (PUT Secret sent -> response at the stream), ${latencies.length} samples: ` +
        `min ${latencies[0]!.toFixed(1)} ms, median ${latencies[Math.floor(latencies.length / 2)]!.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
    );
  });

  await t.test('-cacert: ca.crt of the Secret, then Secret web-tls-cacert; a change to either pushes what depends on it', async (st) => {
    const envoy = envoyWithToken(server!, gatewayToken);
    st.after(() => envoy.close());
    const cert = envoy.sotw();
    cert.request({ names: ['kubernetes://apps/web-tls'] });
    cert.ack(await cert.response(10_000));
    const ca = envoy.sotw();
    ca.request({ names: ['kubernetes://apps/web-tls-cacert'] });
    let r = await ca.response(10_000);
    assert.equal(caOf(r), ca1.certPem, 'fallback: ca.crt of Secret web-tls');
    ca.ack(r);

    // One update of Secret web-tls changes both its certificate and its ca.crt: both names move.
    await admin.putSecret('apps', 'web-tls', tlsData(web3, ca2));
    const [rc, ra] = await Promise.all([cert.response(10_000), ca.response(10_000)]);
    assert.equal(chainOf(rc), web3.certPem);
    assert.equal(caOf(ra), ca2.certPem);
    cert.ack(rc);
    ca.ack(ra);

    // Secret web-tls-cacert takes precedence; the certificate stream sees nothing.
    await admin.putSecret('apps', 'web-tls-cacert', { 'ca.crt': ca3.certPem }, 'Opaque');
    r = await ca.response(10_000);
    assert.equal(caOf(r), ca3.certPem);
    ca.ack(r);
    assert.equal(server!.store.get('kubernetes://apps/web-tls-cacert')?.origin.ref, 'apps/web-tls-cacert');

    // Its other keys count too (cacert).
    await admin.putSecret('apps', 'web-tls-cacert', { cacert: `${ca3.certPem}${ca1.certPem}` }, 'Opaque');
    r = await ca.response(10_000);
    assert.equal(caOf(r), `${ca3.certPem}${ca1.certPem}`);
    ca.ack(r);

    // Deleted: back to ca.crt of web-tls.
    await admin.deleteSecret('apps', 'web-tls-cacert');
    r = await ca.response(10_000);
    assert.equal(caOf(r), ca2.certPem);
    ca.ack(r);
    await cert.nothing();
  });

  await t.test('ConfigMap bundles: configmap://apps/backend-ca (ca.crt) and a configured key (trust-manager)', async (st) => {
    const envoy = envoyWithToken(server!, gatewayToken);
    st.after(() => envoy.close());
    await admin.putConfigMap('apps', 'backend-ca', { 'ca.crt': ca1.certPem, 'other.txt': 'not a bundle' });
    await admin.putConfigMap('apps', 'trust', { 'trust-bundle.pem': `${ca1.certPem}${ca2.certPem}` });
    const s1 = envoy.sotw();
    s1.request({ names: ['configmap://apps/backend-ca'] });
    let r = await s1.response(10_000);
    assert.equal(caOf(r), ca1.certPem);
    s1.ack(r);
    const s2 = envoy.sotw();
    s2.request({ names: ['configmap://apps/trust'] });
    const r2 = await s2.response(10_000);
    assert.equal(caOf(r2), `${ca1.certPem}${ca2.certPem}`);
    s2.ack(r2);

    await admin.putConfigMap('apps', 'backend-ca', { 'ca.crt': `${ca1.certPem}${ca3.certPem}` });
    r = await s1.response(10_000);
    assert.equal(caOf(r), `${ca1.certPem}${ca3.certPem}`);
    await s2.nothing();
  });

  await t.test('a malformed Secret is rejected with an Event and the last good version stays; fixing it pushes', async (st) => {
    const envoy = envoyWithToken(server!, gatewayToken);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: ['kubernetes://apps/web-tls'] });
    const good = await s.response(10_000);
    s.ack(good);
    const goodVersion = server!.store.get('kubernetes://apps/web-tls')!.version;
    const other = makeLeaf(ca1, ['other.apps.example']);

    const cases: Array<{ what: string; data: Record<string, string>; code: string }> = [
      { what: 'mismatched key', data: { 'tls.crt': web1.certPem, 'tls.key': other.keyPem }, code: 'KEY_MISMATCH' },
      {
        what: 'bad PEM',
        data: { 'tls.crt': '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n', 'tls.key': web1.keyPem },
        code: 'PEM_INVALID|CERT_INVALID',
      },
      { what: 'missing key', data: { 'tls.crt': web1.certPem, 'tls.key': '' }, code: 'MISSING_KEYS' },
      {
        what: 'oversized',
        data: { 'tls.crt': `${web1.certPem}${'# padding\n'.repeat(30_000)}`, 'tls.key': web1.keyPem },
        code: 'TOO_LARGE',
      },
    ];
    for (const c of cases) {
      const updated = (await admin.putSecret('apps', 'web-tls', c.data)) as { metadata: { resourceVersion: string } };
      const rv = updated.metadata.resourceVersion;
      await eventually(
        async () =>
          (await admin.eventsFor('apps', 'web-tls')).some((e) => e.reason === 'SecretRejected' && e.involvedObject?.resourceVersion === rv),
        10_000,
        `a SecretRejected Event for ${c.what}`,
      );
      const ev = (await admin.eventsFor('apps', 'web-tls')).find((e) => e.involvedObject?.resourceVersion === rv)!;
      assert.equal(ev.type, 'Warning');
      assert.match(ev.message ?? '', new RegExp(`kubernetes://apps/web-tls not updated \\((${c.code})\\)`), c.what);
      assert.match(ev.message ?? '', new RegExp(`still serving version ${goodVersion}`));
      assert.doesNotMatch(ev.message ?? '', /PRIVATE KEY|BEGIN/);
      assert.equal(server!.store.get('kubernetes://apps/web-tls')?.version, goodVersion, `${c.what}: last good version stays`);
    }
    await s.nothing();
    assert.ok(
      server!.logs.some((l) => l['secret'] === 'kubernetes://apps/web-tls' && l['code'] === 'MISSING_KEYS'),
      'the rejection is logged with the secret name and code',
    );

    const fixed = makeLeaf(ca1, ['web.apps.example', 'fixed.apps.example']);
    await admin.putSecret('apps', 'web-tls', tlsData(fixed, ca2));
    const r = await s.response(10_000);
    assert.equal(chainOf(r), fixed.certPem);
  });

  await t.test('a deleted Secret deletes the store entry (Delta announces the removal)', async (st) => {
    await admin.putSecret('apps', 'short-lived', tlsData(web1));
    const envoy = envoyWithToken(server!, gatewayToken);
    st.after(() => envoy.close());
    const d = envoy.delta();
    d.request({ subscribe: ['kubernetes://apps/short-lived'] });
    const r = await d.response(10_000);
    assert.equal(r.resources[0]?.name, 'kubernetes://apps/short-lived');
    d.ack(r);
    await admin.deleteSecret('apps', 'short-lived');
    const removal = await d.response(10_000);
    assert.deepEqual(removal.removed_resources, ['kubernetes://apps/short-lived']);
    assert.equal(server!.store.get('kubernetes://apps/short-lived'), undefined);
  });

  await t.test('Helm release Secrets are not watched; other Opaque Secrets are ignored', async () => {
    await admin.putSecret('apps', 'sh.helm.release.v1.app.v1', tlsData(web1), 'helm.sh/release.v1');
    await admin.putSecret('apps', 'db-password', { password: 'hunter2', key: 'not a private key' }, 'Opaque');
    // Watch events arrive in order: once this one is in, the two above were seen (or skipped).
    await admin.putSecret('apps', 'sentinel', tlsData(web2));
    await eventually(() => server!.store.get('kubernetes://apps/sentinel') !== undefined, 10_000, 'the sentinel Secret');
    assert.equal(server!.store.get('kubernetes://apps/sh.helm.release.v1.app.v1'), undefined);
    assert.equal(server!.store.get('kubernetes://apps/db-password'), undefined);
    assert.equal((await admin.eventsFor('apps', 'db-password')).length, 0, 'no Event for an unrelated Secret');
  });

  await t.test('no private key, token or password in the logs', () => {
    const text = server!.logText();
    assert.doesNotMatch(text, /PRIVATE KEY/);
    assert.ok(!text.includes(gatewayToken), 'gateway token');
    assert.ok(!text.includes(serverToken), 'server token');
    assert.ok(!text.includes('hunter2'));
  });
});
