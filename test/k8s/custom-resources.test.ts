// Issuance from custom resources (issuance.customResources: true) against a real
// kube-apiserver with the CRDs of deploy/crds/: Certificates and Issuers created with the
// API are issued into Secrets, a Certificate added while the server runs is picked up,
// the status subresource shows Ready and the revision, and an invalid Certificate gets
// Ready=False (InvalidSpec) instead of stopping the others. Issuers have a status too:
// Ready when their CA key pair verifies, Ready=False (InvalidSpec) when their spec does
// not parse, while the Certificates naming them wait.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANNOTATIONS } from '../../src/issuance/secret-facts.js';
import { V, tempDir } from '../issuance/engine-support.js';
import { makeCa } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { caIssuedCertificate, installCrds } from './issuance-resources.js';
import { clusterOrSkip, eventually, KubeAdmin, startKubeSdsServer } from './kube-test-env.js';

type Condition = { type: string; status: string; reason?: string; message?: string };
type CertObj = {
  status?: {
    conditions?: Condition[];
    revision?: number;
    notAfter?: string;
    order?: { url: string; state: string; challenges: Array<Record<string, unknown>> };
  };
};

test('issuance from custom resources', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  let server: TestServer | undefined;
  t.after(async () => {
    await server?.stop();
    admin.close();
    await cluster.stop();
  });
  await installCrds(admin);
  const ns = await admin.namespace('crs');
  const api = `/apis/${V}/namespaces/${ns}`;
  const certificate = (name: string) => admin.client.request<CertObj>('GET', `${api}/certificates/${name}`);
  const ready = (c: CertObj) => c.status?.conditions?.find((x) => x.type === 'Ready');
  const secretRevision = async (name: string) =>
    (
      await admin.client
        .request<{ metadata: { annotations?: Record<string, string> } }>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`)
        .catch(() => undefined)
    )?.metadata.annotations?.[ANNOTATIONS.revision];

  const ca = makeCa('CR CA');
  await admin.putSecret(ns, 'root-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
  const [issuer, web] = caIssuedCertificate(ns) as Array<Record<string, unknown>>;
  await admin.create(`${api}/issuers`, issuer!);
  await admin.create(`${api}/certificates`, web!);

  server = await startKubeSdsServer(cluster, {
    namespaces: [ns],
    doc: {
      dataDir: tempDir('kube-crs-'),
      issuance: {
        customResources: true,
        backoff: { initial: '200ms', max: '1s' },
        leaderElection: { namespace: ns, leaseDuration: '2s', renewDeadline: '1s' },
      },
    },
  });

  await t.test('a Certificate custom resource is issued, and its status subresource says Ready with revision 1', async () => {
    await eventually(async () => ready(await certificate('web'))?.status === 'True', 30_000, 'Certificate web Ready');
    const c = await certificate('web');
    assert.equal(c.status?.revision, 1);
    assert.ok(c.status?.notAfter);
    assert.equal(await secretRevision('web-tls'), '1');
  });

  await t.test('a Certificate created while the server runs is issued too', async () => {
    await admin.create(`${api}/certificates`, {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'api', namespace: ns },
      spec: {
        secretName: 'api-tls',
        dnsNames: ['api.example.com'],
        issuerRef: { name: 'ca', kind: 'Issuer' },
        privateKey: { algorithm: 'ECDSA' },
      },
    });
    await eventually(async () => ready(await certificate('api'))?.status === 'True', 30_000, 'Certificate api Ready');
    assert.equal(await secretRevision('api-tls'), '1');
    assert.equal(await secretRevision('web-tls'), '1', 'the other Certificate is not issued again');
  });

  await t.test("the Issuer's status subresource says Ready (KeyPairVerified)", async () => {
    const issuerObj = () => admin.client.request<CertObj>('GET', `${api}/issuers/ca`);
    await eventually(async () => ready(await issuerObj())?.reason === 'KeyPairVerified', 30_000, 'Issuer ca Ready');
    assert.equal(ready(await issuerObj())?.status, 'True');
  });

  await t.test(
    'an Issuer whose spec does not parse is Ready=False (InvalidSpec); a Certificate naming it waits; the others stay issued',
    async () => {
      // The CRD cannot check that a caBundle holds certificates; the engine's parser can.
      const notPem = Buffer.from('not a certificate').toString('base64');
      await admin.create(`${api}/issuers`, {
        apiVersion: V,
        kind: 'Issuer',
        metadata: { name: 'broken', namespace: ns },
        spec: {
          acme: { server: 'https://acme.example/dir', privateKeySecretRef: { name: 'acct' }, caBundle: notPem, solvers: [{ http01: {} }] },
        },
      });
      await admin.create(`${api}/certificates`, {
        apiVersion: V,
        kind: 'Certificate',
        metadata: { name: 'waits', namespace: ns },
        spec: {
          secretName: 'waits-tls',
          dnsNames: ['waits.example.com'],
          issuerRef: { name: 'broken', kind: 'Issuer' },
          privateKey: { algorithm: 'ECDSA' },
        },
      });
      const broken = () => admin.client.request<CertObj>('GET', `${api}/issuers/broken`);
      await eventually(async () => ready(await broken())?.reason === 'InvalidSpec', 30_000, 'Issuer broken InvalidSpec');
      assert.equal(ready(await broken())?.status, 'False');
      assert.match(ready(await broken())?.message ?? '', /spec\.acme\.caBundle/);
      await eventually(
        async () =>
          /Waiting for the issuer/.test((await certificate('waits')).status?.conditions?.find((x) => x.type === 'Issuing')?.message ?? ''),
        30_000,
        'Certificate waits waiting',
      );
      assert.equal(await secretRevision('waits-tls'), undefined);
      assert.equal(ready(await certificate('web'))?.status, 'True');
    },
  );

  await t.test('the Certificate status schema keeps an ACME order with its challenges (not pruned)', async () => {
    // In a namespace the server does not watch, so only this test writes the status.
    const other = await admin.namespace('crs-schema');
    const path = `/apis/${V}/namespaces/${other}/certificates/probe`;
    await admin.create(`/apis/${V}/namespaces/${other}/certificates`, {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'probe', namespace: other },
      spec: { secretName: 'probe', dnsNames: ['p.example.com'], issuerRef: { name: 'x' } },
    });
    const order = {
      url: 'https://acme.example/order/1',
      state: 'invalid',
      reason: 'unauthorized: no',
      challenges: [
        {
          type: 'dns-01',
          domain: '*.p.example.com',
          url: 'https://acme.example/chall/1',
          state: 'invalid',
          presented: false,
          reason: 'unauthorized: No TXT records found',
        },
      ],
    };
    await admin.client.request('PATCH', `${path}/status`, {
      body: { status: { conditions: [], order } },
      contentType: 'application/merge-patch+json',
    });
    const back = await admin.client.request<CertObj>('GET', path);
    assert.deepEqual(back.status?.order, order);
  });

  await t.test('a Certificate naming a missing issuer gets Ready=False (InvalidSpec); the others stay issued', async () => {
    await admin.create(`${api}/certificates`, {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'bad', namespace: ns },
      spec: { secretName: 'bad-tls', dnsNames: ['bad.example.com'], issuerRef: { name: 'missing', kind: 'Issuer' } },
    });
    await eventually(async () => ready(await certificate('bad'))?.reason === 'InvalidSpec', 30_000, 'Certificate bad InvalidSpec');
    assert.match(ready(await certificate('bad'))?.message ?? '', /Issuer "missing" in namespace .* is not declared/);
    assert.equal(await secretRevision('bad-tls'), undefined);
    assert.equal(ready(await certificate('web'))?.status, 'True');
    assert.doesNotMatch(server.logText(), /PRIVATE KEY/);
  });
});
