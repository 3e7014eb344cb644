// CA-only names against a real kube-apiserver: open within the caller's own namespace;
// from another namespace served only when RBAC allows `get` on the object the name is
// read from; `ca.crt` read only from kubernetes.io/tls and Opaque Secrets. Bearer tokens
// from a non-loopback peer over plaintext TCP are refused.
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, untilReady } from './kube-test-env.js';

const DENIED_MSG = 'secret name denied to caller';

async function expectDenied(server: TestServer, envoy: FakeEnvoy, name: string): Promise<void> {
  const from = server.logs.length;
  const s = envoy.sotw();
  s.request({ names: [name] });
  await eventually(() => server.logs.slice(from).some((l) => l['msg'] === DENIED_MSG && l['secret'] === name), 10_000, `denial of ${name}`);
  await s.nothing();
  s.cancel();
}

async function expectServed(envoy: FakeEnvoy, name: string, caPem: string): Promise<void> {
  const s = envoy.sotw();
  s.request({ names: [name] });
  assert.equal(pemOf((await s.response(10_000)).secrets[0]?.validation_context?.trusted_ca), caPem, name);
  s.cancel();
}

test('CA-only names: own namespace open, other namespaces by RBAC on the source object, ca.crt only from TLS and Opaque Secrets', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const appsCa = makeCa('Apps CA');
  const gwCa = makeCa('Gateway CA');
  const leaf = makeLeaf(appsCa, ['web.apps.example']);
  const gwLeaf = makeLeaf(gwCa, ['gw.example']);
  await admin.ensureNamespace('apps');
  await admin.ensureNamespace('gateway');
  await admin.putSecret('apps', 'web-tls', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': appsCa.certPem });
  await admin.putConfigMap('apps', 'backend-ca', { 'ca.crt': appsCa.certPem });
  await admin.putSecret('gateway', 'gw-tls', { 'tls.crt': gwLeaf.certPem, 'tls.key': gwLeaf.keyPem, 'ca.crt': gwCa.certPem });
  await admin.putConfigMap('gateway', 'gw-ca', { 'ca.crt': gwCa.certPem });
  await admin.putSecret('gateway', 'opaque-ca', { 'ca.crt': gwCa.certPem }, 'Opaque');
  // Types that may carry a ca.crt but are never CA bundles for Envoy.
  await admin.putSecret('gateway', 'creds', { username: 'u', password: 'p', 'ca.crt': gwCa.certPem }, 'kubernetes.io/basic-auth');
  await admin.putSecret('gateway', 'custom', { 'ca.crt': gwCa.certPem }, 'example.com/custom');
  const gw = { namespace: 'gateway', name: 'gw' };
  const token = await admin.serviceAccountToken('gateway', 'gw');

  const server = await startKubeSdsServer(cluster, { namespaces: ['apps', 'gateway'] });
  t.after(() => server.stop());
  await untilReady(server);
  await eventually(
    () =>
      server.store.get('kubernetes://gateway/opaque-ca-cacert') !== undefined &&
      server.store.get('configmap://apps/backend-ca') !== undefined,
    10_000,
    'CA names loaded',
  );
  const envoy = envoyWithToken(server, token);
  t.after(() => envoy.close());

  await t.test('within its own namespace a ServiceAccount reads CA names without any RoleBinding', async () => {
    await expectServed(envoy, 'kubernetes://gateway/gw-tls-cacert', gwCa.certPem);
    await expectServed(envoy, 'configmap://gateway/gw-ca', gwCa.certPem);
    await expectServed(envoy, 'kubernetes://gateway/opaque-ca-cacert', gwCa.certPem);
  });

  await t.test('ca.crt of other Secret types is never served (the name does not exist)', () => {
    assert.equal(server.store.get('kubernetes://gateway/creds-cacert'), undefined);
    assert.equal(server.store.get('kubernetes://gateway/custom-cacert'), undefined);
  });

  await t.test('another namespace CA names are denied alike whether they exist or not', async () => {
    for (const name of [
      'kubernetes://apps/web-tls-cacert',
      'configmap://apps/backend-ca',
      'kubernetes://apps/missing-cacert',
      'configmap://apps/missing',
    ]) {
      await expectDenied(server, envoy, name);
    }
    const errs: grpc.ServiceError[] = [];
    for (const name of ['configmap://apps/backend-ca', 'configmap://apps/missing']) {
      await envoy.fetch([name]).then(
        () => assert.fail(`${name} served`),
        (e: grpc.ServiceError) => errs.push(e),
      );
    }
    assert.deepEqual(
      errs.map((e) => e.code),
      [grpc.status.PERMISSION_DENIED, grpc.status.PERMISSION_DENIED],
    );
  });

  await t.test('RBAC get on the ConfigMap, or on the Secret, opens its CA name across namespaces', async () => {
    // An open stream waiting on the denied name is served once RBAC allows it.
    const from = server.logs.length;
    const waiting = envoy.sotw();
    waiting.request({ names: ['configmap://apps/backend-ca'] });
    await eventually(() => server.logs.slice(from).some((l) => l['msg'] === DENIED_MSG), 10_000, 'denial');
    await admin.create('/apis/rbac.authorization.k8s.io/v1/namespaces/apps/roles', {
      metadata: { name: 'read-backend-ca' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: ['backend-ca'] }],
    });
    await admin.create('/apis/rbac.authorization.k8s.io/v1/namespaces/apps/rolebindings', {
      metadata: { name: 'gw-read-backend-ca' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-backend-ca' },
      subjects: [{ kind: 'ServiceAccount', name: gw.name, namespace: gw.namespace }],
    });
    assert.equal(pemOf((await waiting.response(15_000)).secrets[0]?.validation_context?.trusted_ca), appsCa.certPem);
    waiting.cancel();
    await admin.allowSecretRead('apps', gw, 'gw-web', ['web-tls']);
    await eventually(() => admin.canGet(gw, 'apps', 'web-tls'), 10_000, 'RBAC to allow');
    let served = false;
    for (let i = 0; i < 20 && !served; i++) {
      const s = envoy.sotw();
      s.request({ names: ['kubernetes://apps/web-tls-cacert'] });
      const r = await s.response(1500).catch(() => undefined);
      s.cancel();
      if (r) {
        assert.equal(pemOf(r.secrets[0]?.validation_context?.trusted_ca), appsCa.certPem);
        served = true;
      }
    }
    assert.ok(served, 'web-tls-cacert served once RBAC allows get on Secret web-tls');
  });
});

/** A non-loopback IPv4 address of this machine. */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

test('a bearer token over plaintext TCP from a non-loopback peer is refused, naming TLS or the Unix socket', async (t) => {
  const ip = externalAddress();
  if (!ip) {
    assert.notEqual(process.env['CI'], 'true', 'CI needs a non-loopback interface for this test');
    t.skip('no non-loopback interface');
    return;
  }
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  await admin.ensureNamespace('gateway');
  await admin.putConfigMap('gateway', 'gw-ca', { 'ca.crt': makeCa('CA').certPem });
  const token = await admin.serviceAccountToken('gateway', 'gw');
  const server = await startKubeSdsServer(cluster, { namespaces: ['gateway'], doc: { grpc: { tcp: { address: `${ip}:0` } } } });
  t.after(() => server.stop());
  await untilReady(server);
  const envoy = envoyWithToken(server, token);
  t.after(() => envoy.close());
  const s = envoy.sotw();
  s.request({ names: ['configmap://gateway/gw-ca'] });
  const err = await s.closedWith(10_000);
  assert.equal(err.code, grpc.status.UNAUTHENTICATED);
  assert.match(err.details, /TLS listener or the Unix socket/);
  await assert.rejects(
    envoy.fetch(['configmap://gateway/gw-ca']),
    (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED && /TLS listener or the Unix socket/.test(e.details),
  );
  assert.ok(!server.logText().includes(token), 'the token is never logged');
});
