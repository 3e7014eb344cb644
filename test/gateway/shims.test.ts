// gateway-shim and ingress-shim in the issuance engine (custom-resource mode), against a
// real kube-apiserver with our CRDs and the Gateway API CRDs: an annotated Gateway or
// Ingress gets a Certificate per TLS Secret it names, owned by it, updated and removed
// with it; cert-manager's annotations only on request, refused while cert-manager's CRDs
// are served; a Secret that carries cert-manager.io/certificate-name is never written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { KubeApiError } from '../../src/kubernetes/kube-errors.js';
import { V, tempDir } from '../issuance/engine-support.js';
import { installCrds } from '../k8s/issuance-resources.js';
import { clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, type KubeAdmin } from '../k8s/kube-test-env.js';
import type { KubeCluster } from '../harness/kube-cluster.js';
import { installCrds as installCrdFiles } from '../harness/cert-manager.js';
import { makeCa } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { GATEWAY_API, gatewayPodToken, installGatewayApiCrds } from './gateway-env.js';

type Condition = { type: string; status: string; reason?: string; message?: string };
interface CertObj {
  metadata: {
    name: string;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
  };
  spec: { secretName: string; dnsNames?: string[]; issuerRef: { name: string; kind: string } };
  status?: { conditions?: Condition[] };
}

function startShimServer(cluster: KubeCluster, ns: string, certManagerAnnotations = false): Promise<TestServer> {
  return startKubeSdsServer(cluster, {
    namespaces: [ns],
    kubernetes: { gatewayApi: true },
    doc: {
      dataDir: tempDir('kube-shims-'),
      issuance: {
        customResources: true,
        shims: { gateways: true, ingresses: true, certManagerAnnotations },
        backoff: { initial: '200ms', max: '1s' },
        leaderElection: { namespace: ns, leaseDuration: '2s', renewDeadline: '1s' },
      },
    },
  });
}

async function certificates(admin: KubeAdmin, ns: string): Promise<Map<string, CertObj>> {
  // 429 "storage is (re)initializing": the API server's cache of a new CRD, briefly; ask again.
  for (let attempt = 0; ; attempt++) {
    try {
      const list = await admin.client.request<{ items: CertObj[] }>('GET', `/apis/${V}/namespaces/${ns}/certificates`);
      return new Map(list.items.map((c) => [c.metadata.name, c]));
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 429) || attempt >= 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test('gateway-shim and ingress-shim', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  await installCrds(admin);
  await installGatewayApiCrds(cluster);
  const ns = await admin.namespace('shims');
  const ca = makeCa('Shim CA');
  await admin.putSecret(ns, 'root-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
  await admin.create(`/apis/${V}/namespaces/${ns}/issuers`, {
    apiVersion: V,
    kind: 'Issuer',
    metadata: { name: 'ca', namespace: ns },
    spec: { ca: { secretName: 'root-ca' } },
  });
  let server: TestServer | undefined = await startShimServer(cluster, ns);
  t.after(() => server?.stop());
  const gateways = `${GATEWAY_API}/namespaces/${ns}/gateways`;
  const ingresses = `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`;
  const listener = (name: string, hostname: string | undefined, secret: string, mode = 'Terminate') => ({
    name,
    protocol: 'HTTPS',
    port: 443,
    ...(hostname ? { hostname } : {}),
    tls: { mode, certificateRefs: [{ name: secret }] },
  });

  await t.test('an annotated Gateway gets a Certificate per Secret its listeners name, owned by it, and it is issued', async () => {
    const gw = (await admin.create(gateways, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'edge', annotations: { 'envoy-sds.io/issuer': 'ca' } },
      spec: {
        gatewayClassName: 'envoy',
        listeners: [
          listener('a', 'a.example', 'edge-tls'),
          listener('b', 'b.example', 'edge-tls'),
          listener('any', undefined, 'edge-tls'),
          { name: 'pass', protocol: 'TLS', port: 8443, hostname: 'p.example', tls: { mode: 'Passthrough' } },
        ],
      },
    })) as { metadata: { uid: string } };
    await eventually(async () => (await certificates(admin, ns)).has('edge-tls'), 20_000, 'Certificate edge-tls');
    const cert = (await certificates(admin, ns)).get('edge-tls')!;
    assert.deepEqual(cert.spec.dnsNames, ['a.example', 'b.example']);
    assert.equal(cert.spec.secretName, 'edge-tls');
    assert.deepEqual(cert.spec.issuerRef, { name: 'ca', kind: 'Issuer', group: 'envoy-sds.io' });
    assert.deepEqual(
      cert.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
      [['Gateway', 'edge', gw.metadata.uid, true]],
    );
    await eventually(
      async () =>
        (await certificates(admin, ns)).get('edge-tls')?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ??
        false,
      30_000,
      'edge-tls Ready',
    );
    await eventually(() => server!.store.get(`kubernetes://${ns}/edge-tls`) !== undefined, 10_000, 'the issued Secret served');
  });

  await t.test('the Gateway changes: its Certificate follows; a Gateway without the annotation gets none', async () => {
    await admin.client.request('PATCH', `${gateways}/edge`, {
      body: { spec: { listeners: [listener('a', 'a.example', 'edge-tls'), listener('c', 'c.example', 'extra-tls')] } },
      contentType: 'application/merge-patch+json',
    });
    await eventually(
      async () => {
        const certs = await certificates(admin, ns);
        return (
          JSON.stringify(certs.get('edge-tls')?.spec.dnsNames) === '["a.example"]' &&
          JSON.stringify(certs.get('extra-tls')?.spec.dnsNames) === '["c.example"]'
        );
      },
      20_000,
      'edge-tls narrowed, extra-tls added',
    );
    await admin.create(gateways, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'plain' },
      spec: { gatewayClassName: 'envoy', listeners: [listener('a', 'plain.example', 'plain-tls')] },
    });
    await admin.client.request('PATCH', `${gateways}/edge`, {
      body: { spec: { listeners: [listener('a', 'a.example', 'edge-tls')] } },
      contentType: 'application/merge-patch+json',
    });
    await eventually(async () => !(await certificates(admin, ns)).has('extra-tls'), 20_000, 'extra-tls removed with its listener');
    assert.ok(!(await certificates(admin, ns)).has('plain-tls'), 'no annotation, no Certificate');
  });

  await t.test('an annotated Ingress gets a Certificate per TLS block; a Certificate the shim did not make is left alone', async () => {
    await admin.create(`/apis/${V}/namespaces/${ns}/certificates`, {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'hand-made-tls' },
      spec: { secretName: 'hand-made-tls', dnsNames: ['hand.example'], issuerRef: { name: 'ca', kind: 'Issuer' } },
    });
    await admin.create(ingresses, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'web', annotations: { 'envoy-sds.io/issuer': 'ca' } },
      spec: {
        tls: [
          { hosts: ['web.example', 'www.example'], secretName: 'web-ing-tls' },
          { hosts: ['other.example'], secretName: 'hand-made-tls' },
        ],
        defaultBackend: { service: { name: 'web', port: { number: 80 } } },
      },
    });
    await eventually(async () => (await certificates(admin, ns)).has('web-ing-tls'), 20_000, 'Certificate web-ing-tls');
    const certs = await certificates(admin, ns);
    assert.deepEqual(certs.get('web-ing-tls')!.spec.dnsNames, ['web.example', 'www.example']);
    assert.equal(certs.get('web-ing-tls')!.metadata.ownerReferences?.[0]?.kind, 'Ingress');
    assert.deepEqual(certs.get('hand-made-tls')!.spec.dnsNames, ['hand.example'], 'not overwritten');
    await eventually(() => server!.logs.some((l) => String(l['msg']).includes('not this object')), 10_000, 'the clash logged');
    // Deleting the Ingress removes its Certificate (the hand-made one stays).
    await admin.client.request('DELETE', `${ingresses}/web`);
    await eventually(async () => !(await certificates(admin, ns)).has('web-ing-tls'), 20_000, 'web-ing-tls removed with the Ingress');
    assert.ok((await certificates(admin, ns)).has('hand-made-tls'));
  });

  await t.test('a Secret that carries cert-manager.io/certificate-name is never written', async () => {
    await admin.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: 'cm-tls', annotations: { 'cert-manager.io/certificate-name': 'cm' } },
      type: 'Opaque',
      data: { note: Buffer.from('cert-manager owns this').toString('base64') },
    });
    await admin.create(ingresses, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'cm', annotations: { 'envoy-sds.io/issuer': 'ca' } },
      spec: { tls: [{ hosts: ['cm.example'], secretName: 'cm-tls' }], defaultBackend: { service: { name: 'web', port: { number: 80 } } } },
    });
    await eventually(
      async () => {
        const c = (await certificates(admin, ns)).get('cm-tls');
        return c?.status?.conditions?.some((x) => (x.message ?? '').includes('cert-manager.io/certificate-name')) ?? false;
      },
      30_000,
      'the Certificate says why it is not issued',
    );
    const secret = await admin.client.request<{ data?: Record<string, string>; metadata: { annotations?: Record<string, string> } }>(
      'GET',
      `/api/v1/namespaces/${ns}/secrets/cm-tls`,
    );
    assert.deepEqual(Object.keys(secret.data ?? {}), ['note']);
    assert.deepEqual(Object.keys(secret.metadata.annotations ?? {}), ['cert-manager.io/certificate-name']);
  });

  await t.test("a CA issuer's key pair is not served under the gateway scheme either", async (st) => {
    await admin.create(gateways, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'leaky' },
      spec: { gatewayClassName: 'envoy', listeners: [listener('a', 'leak.example', 'root-ca')] },
    });
    const token = await gatewayPodToken(admin, ns, 'leaky', 'leaky-1', 'leaky');
    await eventually(() => server!.store.get(`kubernetes-gateway://${ns}/root-ca`) !== undefined, 10_000, 'the name exists');
    const envoy = envoyWithToken(server!, token);
    st.after(() => envoy.close());
    const from = server!.logs.length;
    const s = envoy.sotw();
    s.request({ names: [`kubernetes-gateway://${ns}/root-ca`] });
    await eventually(
      () => server!.logs.slice(from).some((l) => String(l['msg']).startsWith('a CA private key is never served')),
      10_000,
      'withheld',
    );
    await s.nothing();
  });

  await t.test('deleting the Gateway removes its Certificates', async () => {
    await admin.client.request('DELETE', `${gateways}/edge`);
    await eventually(async () => !(await certificates(admin, ns)).has('edge-tls'), 20_000, 'edge-tls removed with the Gateway');
  });

  await t.test("cert-manager's annotations: honoured on request, refused while cert-manager's CRDs are served", async () => {
    await server!.stop();
    server = await startShimServer(cluster, ns, true);
    await admin.create(ingresses, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'cmstyle', annotations: { 'cert-manager.io/issuer': 'ca' } },
      spec: {
        tls: [{ hosts: ['cmstyle.example'], secretName: 'cmstyle-tls' }],
        defaultBackend: { service: { name: 'web', port: { number: 80 } } },
      },
    });
    await eventually(async () => (await certificates(admin, ns)).has('cmstyle-tls'), 20_000, 'Certificate from cert-manager.io/issuer');
    await server.stop();
    server = undefined;
    // cert-manager's Certificate CRD, as its chart installs it (the Go module's deploy/crds).
    const crd = execFileSync('bash', ['test/harness/helm/crds.sh'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.endsWith('cert-manager.io_certificates.yaml'))!;
    await installCrdFiles(cluster, [crd]);
    await assert.rejects(startShimServer(cluster, ns, true), /certManagerAnnotations: refused.*certificates\.cert-manager\.io/);
  });
});
