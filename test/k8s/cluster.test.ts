// The Kubernetes harness against a real kube-apiserver: the calls the SDS server depends on
// (Secrets, TokenRequest, TokenReview, SubjectAccessReview) behave as in a real cluster,
// and a restart keeps the data.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { V1SubjectAccessReview } from '@kubernetes/client-node';
import { ENVOY_SDS_AUDIENCE, KubeBinariesNotFoundError, startKubeCluster, type KubeCluster } from '../harness/kube-cluster.js';

const TLS_CRT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const TLS_KEY = '-----BEGIN PRIVATE KEY-----\nMIIBfake\n-----END PRIVATE KEY-----\n';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Loaded lazily so that a client library that cannot load says why (see the message). */
async function loadClient(): Promise<typeof import('@kubernetes/client-node')> {
  try {
    return await import('@kubernetes/client-node');
  } catch (err) {
    throw new Error(
      `@kubernetes/client-node failed to load on Node ${process.version} (${err instanceof Error ? err.message : String(err)}). ` +
        'client-node 2.x needs Node >= 22.19 (undici 8); run Node 24 (bash scripts/node24.sh)',
      { cause: err },
    );
  }
}

test('kubernetes harness: real kube-apiserver with RBAC, tokens and restart', async (t) => {
  const { AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, Watch } = await loadClient();
  let cluster: KubeCluster;
  const started = Date.now();
  try {
    cluster = await startKubeCluster();
  } catch (err) {
    // Outside CI a machine without the binaries skips; CI must have them (see .ci/run).
    if (err instanceof KubeBinariesNotFoundError && process.env['CI'] !== 'true') {
      t.skip(err.message);
      return;
    }
    throw err;
  }
  t.after(() => cluster.stop());
  t.diagnostic(`cluster ${cluster.server} ready in ${Date.now() - started} ms; logs ${cluster.logFiles.apiServer}`);

  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const authn = kc.makeApiClient(AuthenticationV1Api);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);

  // Namespaces never finish deleting here (no controller-manager): always a fresh name.
  const ns = `harness-${randomBytes(4).toString('hex')}`;
  const secretName = 'gateway-tls';
  const saName = 'envoy-gateway';
  const saUser = `system:serviceaccount:${ns}:${saName}`;
  let token = '';
  let saGroups: string[] = [];

  await t.test('creates a namespace and a TLS Secret and reads it back', async () => {
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: secretName },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(TLS_CRT), 'tls.key': b64(TLS_KEY) },
      },
    });
    const secret = await core.readNamespacedSecret({ name: secretName, namespace: ns });
    assert.equal(secret.type, 'kubernetes.io/tls');
    assert.equal(secret.data?.['tls.crt'], b64(TLS_CRT));
    assert.equal(secret.data?.['tls.key'], b64(TLS_KEY));
  });

  await t.test('issues a ServiceAccount token for audience envoy-sds (TokenRequest)', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: saName } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name: saName,
      namespace: ns,
      body: { spec: { audiences: [ENVOY_SDS_AUDIENCE], expirationSeconds: 600 } },
    });
    token = tr.status?.token ?? '';
    assert.ok(token.split('.').length === 3, 'a JWT');
  });

  await t.test('validates the token (TokenReview) and names the ServiceAccount', async () => {
    const review = await authn.createTokenReview({ body: { spec: { token, audiences: [ENVOY_SDS_AUDIENCE] } } });
    assert.equal(review.status?.authenticated, true, review.status?.error);
    assert.equal(review.status?.user?.username, saUser);
    assert.deepEqual(review.status?.audiences, [ENVOY_SDS_AUDIENCE]);
    saGroups = review.status?.user?.groups ?? [];
    assert.ok(saGroups.includes(`system:serviceaccounts:${ns}`), saGroups.join(','));

    // No audience in the review: the API server's audiences apply, which include envoy-sds.
    const byDefault = await authn.createTokenReview({ body: { spec: { token } } });
    assert.equal(byDefault.status?.authenticated, true, byDefault.status?.error);

    const wrongAudience = await authn.createTokenReview({ body: { spec: { token, audiences: ['someone-else'] } } });
    assert.notEqual(wrongAudience.status?.authenticated, true); // false is left out of the JSON
    assert.ok(wrongAudience.status?.error, 'a reason');
  });

  const canGetSecret = async (): Promise<V1SubjectAccessReview> =>
    authz.createSubjectAccessReview({
      body: {
        spec: {
          user: saUser,
          groups: saGroups,
          resourceAttributes: { namespace: ns, verb: 'get', resource: 'secrets', name: secretName },
        },
      },
    });

  await t.test('SubjectAccessReview: denied without a RoleBinding, allowed with one', async () => {
    const before = await canGetSecret();
    assert.equal(before.status?.allowed, false);

    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'read-gateway-tls' },
        rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get', 'watch', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'envoy-gateway-reads-tls' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-gateway-tls' },
        subjects: [{ kind: 'ServiceAccount', name: saName, namespace: ns }],
      },
    });
    // The RBAC authorizer reads through an informer: the binding shows up within moments.
    const deadline = Date.now() + 10_000;
    let after = await canGetSecret();
    while (after.status?.allowed !== true && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await canGetSecret();
    }
    assert.equal(after.status?.allowed, true, after.status?.reason);
  });

  await t.test(
    'kubectl works with the admin kubeconfig',
    { skip: cluster.kubectlPath === undefined && 'no kubectl in the bin dir' },
    async () => {
      const { stdout } = await promisify(execFile)(cluster.kubectlPath ?? 'kubectl', [
        '--kubeconfig',
        cluster.kubeconfigPath,
        '-n',
        ns,
        'get',
        'secret',
        secretName,
        '-o',
        'jsonpath={.type}',
      ]);
      assert.equal(stdout, 'kubernetes.io/tls');
    },
  );

  await t.test('restart ends open watches and keeps the Secret; old tokens stay valid', async () => {
    let watchEnded!: () => void;
    const ended = new Promise<void>((resolve) => (watchEnded = resolve));
    const watch = await new Watch(kc).watch(
      `/api/v1/namespaces/${ns}/secrets`,
      {},
      () => {},
      () => watchEnded(),
    );
    const begin = Date.now();
    await cluster.restart();
    t.diagnostic(`restart took ${Date.now() - begin} ms`);
    await ended;
    watch.abort();
    // The same KubeConfig and clients keep working: same port, same serving CA.
    const secret = await core.readNamespacedSecret({ name: secretName, namespace: ns });
    assert.equal(secret.data?.['tls.crt'], b64(TLS_CRT));
    const review = await authn.createTokenReview({ body: { spec: { token, audiences: [ENVOY_SDS_AUDIENCE] } } });
    assert.equal(review.status?.user?.username, saUser);
  });
});
