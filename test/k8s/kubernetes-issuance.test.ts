// The issuance engine in Kubernetes mode against a real kube-apiserver: a Certificate
// becomes a kubernetes.io/tls Secret (with the envoy-sds.io/ annotations) that the
// Kubernetes source serves to an SDS stream as kubernetes://<ns>/<secret>, and the
// persister's optimistic concurrency: a conflicting write is retried on the fresh object,
// and a newer revision is never overwritten.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { KubeClient } from '../../src/kubernetes/kube-client.js';
import { fromKubeconfig } from '../../src/kubernetes/kube-connection.js';
import { KubernetesSecretPersister, stateSecretName } from '../../src/issuance/persisters/kubernetes-secret-persister.js';
import { SecretSupersededError } from '../../src/issuance/persisters/persister.js';
import type { CertificateResource } from '../../src/issuance/resources.js';
import { ANNOTATIONS } from '../../src/issuance/secret-facts.js';
import { pemOf, type SotwResponse } from '../support/fake-envoy.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { tempDir } from '../issuance/engine-support.js';
import { caIssuedCertificate } from './issuance-resources.js';
import { clusterOrSkip, envoyWithToken, eventually, KubeAdmin, startKubeSdsServer, untilReady } from './kube-test-env.js';

type SecretObj = {
  type?: string;
  data?: Record<string, string>;
  metadata: { resourceVersion: string; annotations?: Record<string, string>; labels?: Record<string, string> };
};
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
const chainOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.tls_certificate?.certificate_chain);
const caOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.validation_context?.trusted_ca);

test('issuance in Kubernetes mode', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop();
    admin.close();
    await cluster.stop();
  });
  const getSecret = (ns: string, name: string) => admin.client.request<SecretObj>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`);

  await t.test(
    'a Certificate with a CA issuer becomes a kubernetes.io/tls Secret with annotations, served as kubernetes://<ns>/<secret>',
    async (st) => {
      const ns = await admin.namespace('issue');
      const ca = makeCa('Kube Issuance CA');
      await admin.putSecret(ns, 'root-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
      const gatewayToken = await admin.serviceAccountToken(ns, 'gw');
      await admin.allowSecretRead(ns, { namespace: ns, name: 'gw' }, 'gw-reads');

      const server = await startKubeSdsServer(cluster, {
        namespaces: [ns],
        doc: {
          trustLoopback: true, // the renew control below is used from loopback (off by default in Kubernetes)
          dataDir: tempDir('kube-issuance-'),
          issuance: {
            backoff: { initial: '200ms', max: '1s' },
            leaderElection: { namespace: ns, leaseDuration: '2s', renewDeadline: '1s' },
            resources: caIssuedCertificate(ns),
          },
        },
      });
      servers.push(server);
      await untilReady(server, 30_000);

      await eventually(async () => (await getSecret(ns, 'web-tls').catch(() => undefined)) !== undefined, 20_000, 'Secret web-tls');
      const secret = await getSecret(ns, 'web-tls');
      assert.equal(secret.type, 'kubernetes.io/tls');
      const a = secret.metadata.annotations ?? {};
      assert.equal(a[ANNOTATIONS.certificateName], 'web');
      assert.equal(a[ANNOTATIONS.issuerName], 'ca');
      assert.equal(a[ANNOTATIONS.issuerKind], 'Issuer');
      assert.equal(a[ANNOTATIONS.revision], '1');
      assert.ok(a[ANNOTATIONS.requestHash]);
      assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
      const leaf = new X509Certificate(unb64(secret.data?.['tls.crt']));
      assert.ok(leaf.checkIssued(new X509Certificate(ca.certPem)));
      assert.match(leaf.subjectAltName ?? '', /DNS:web\.example\.com/);

      // The engine's own state is a separate Secret, without TLS keys (the source skips it):
      // the next key is gone once issued, the status says revision 1.
      // The engine writes it after the served Secret: wait for that state, never read it once.
      const stateName = stateSecretName({ name: 'web' } as CertificateResource);
      const stateRevision = async (): Promise<number | undefined> => {
        const state = await getSecret(ns, stateName).catch(() => undefined);
        const status = state?.data?.['status.json'];
        if (!status || Object.keys(state.data ?? {}).length !== 1) return undefined;
        return (JSON.parse(unb64(status)) as { revision: number }).revision;
      };
      await eventually(async () => (await stateRevision()) === 1, 20_000, 'state Secret with only status.json at revision 1');

      // No file secret was declared: Envoy reaches it through the Kubernetes source.
      const envoy = envoyWithToken(server, gatewayToken);
      st.after(() => envoy.close());
      const tls = envoy.sotw();
      tls.request({ names: [`kubernetes://${ns}/web-tls`] });
      const r = await tls.response(15_000);
      assert.equal(new X509Certificate(chainOf(r)).fingerprint256, leaf.fingerprint256);
      const cacert = envoy.sotw();
      cacert.request({ names: [`kubernetes://${ns}/web-tls-cacert`] });
      assert.equal(new X509Certificate(caOf(await cacert.response(15_000))).fingerprint256, new X509Certificate(ca.certPem).fingerprint256);

      // A forced renewal reaches the same stream as a new version, with revision 2.
      tls.ack(r);
      const renew = await fetch(`http://${server.httpAddress}/issuance/renew/${ns}/web`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-envoy-sds-intent': 'renew' },
        body: '{}',
      });
      assert.equal(renew.status, 202, await renew.text());
      const r2 = await tls.response(15_000);
      assert.notEqual(r2.version_info, r.version_info);
      assert.notEqual(new X509Certificate(chainOf(r2)).serialNumber, leaf.serialNumber);
      assert.equal((await getSecret(ns, 'web-tls')).metadata.annotations?.[ANNOTATIONS.revision], '2');
      assert.doesNotMatch(server.logText(), /PRIVATE KEY/);
    },
  );

  await t.test("a conflicting update (409) is retried on the fresh Secret, keeping the other writer's changes", async (st) => {
    const ns = await admin.namespace('conflict');
    const ca = makeCa('Conflict CA');
    const leaf1 = makeLeaf(ca, ['a.example']);
    const leaf2 = makeLeaf(ca, ['a.example']);
    let interfered = 0;
    // The other writer acts between our GET and our PUT: the real API server answers 409.
    const client = new InterferingClient(cluster.kubeconfigPath, async () => {
      interfered++;
      const s = await getSecret(ns, 'a-tls');
      await admin.client.request('PUT', `/api/v1/namespaces/${ns}/secrets/a-tls`, {
        body: {
          ...s,
          metadata: { ...s.metadata, labels: { team: 'edge' }, annotations: { ...s.metadata.annotations, 'example.com/note': 'kept' } },
        },
      });
    });
    st.after(() => client.close());
    const persister = new KubernetesSecretPersister(() => client);
    const secret = (leaf: typeof leaf1, revision: string) => ({
      data: { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem },
      annotations: { [ANNOTATIONS.revision]: revision },
    });

    await persister.writeSecret(ns, 'a-tls', secret(leaf1, '1'));
    client.interfereOnNextPut = true;
    await persister.writeSecret(ns, 'a-tls', secret(leaf2, '2'));
    assert.equal(interfered, 1);
    assert.equal(client.conflicts, 1, 'the API server refused the stale write once');
    const s = await getSecret(ns, 'a-tls');
    assert.equal(unb64(s.data?.['tls.crt']), leaf2.certPem);
    assert.equal(s.metadata.annotations?.[ANNOTATIONS.revision], '2');
    assert.equal(s.metadata.annotations?.['example.com/note'], 'kept');
    assert.equal(s.metadata.labels?.['team'], 'edge');
  });

  await t.test('a write never replaces a newer (or the same) revision', async (st) => {
    const ns = await admin.namespace('newer');
    const ca = makeCa('Newer CA');
    const older = makeLeaf(ca, ['b.example']);
    const newer = makeLeaf(ca, ['b.example']);
    const client = new InterferingClient(cluster.kubeconfigPath, async () => {
      // Another replica finished revision 3 while we were issuing revision 2.
      const s = await getSecret(ns, 'b-tls');
      await admin.client.request('PUT', `/api/v1/namespaces/${ns}/secrets/b-tls`, {
        body: {
          ...s,
          data: {
            ...s.data,
            'tls.crt': Buffer.from(newer.certPem).toString('base64'),
            'tls.key': Buffer.from(newer.keyPem).toString('base64'),
          },
          metadata: { ...s.metadata, annotations: { ...s.metadata.annotations, [ANNOTATIONS.revision]: '3' } },
        },
      });
    });
    st.after(() => client.close());
    const persister = new KubernetesSecretPersister(() => client);
    await persister.writeSecret(ns, 'b-tls', {
      data: { 'tls.crt': older.certPem, 'tls.key': older.keyPem },
      annotations: { [ANNOTATIONS.revision]: '1' },
    });
    client.interfereOnNextPut = true;
    await assert.rejects(
      persister.writeSecret(ns, 'b-tls', {
        data: { 'tls.crt': older.certPem, 'tls.key': older.keyPem },
        annotations: { [ANNOTATIONS.revision]: '2' },
      }),
      (err: unknown) => err instanceof SecretSupersededError && err.held === 3 && err.attempted === 2,
    );
    const s = await getSecret(ns, 'b-tls');
    assert.equal(unb64(s.data?.['tls.crt']), newer.certPem);
    assert.equal(s.metadata.annotations?.[ANNOTATIONS.revision], '3');
  });
});

/** Our client, with a hook that runs another writer's update just before one PUT. */
class InterferingClient extends KubeClient {
  interfereOnNextPut = false;
  conflicts = 0;

  constructor(
    kubeconfigPath: string,
    private readonly interfere: () => Promise<void>,
  ) {
    super(fromKubeconfig(kubeconfigPath, undefined, 'test'));
  }

  override async request<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts: Parameters<KubeClient['request']>[2] = {},
  ): Promise<T> {
    if (method === 'PUT' && this.interfereOnNextPut) {
      this.interfereOnNextPut = false;
      await this.interfere();
    }
    try {
      return await super.request<T>(method, path, opts);
    } catch (err) {
      if ((err as { status?: number }).status === 409) this.conflicts++;
      throw err;
    }
  }
}
