// The real trust-manager (with the real cert-manager making the CA it distributes): a
// Bundle whose target is a ConfigMap in the gateway's namespace is served as
// configmap://gateway/backend-trust, and a change to its sources (a new inLine CA, then a
// renewal of cert-manager's root) reaches the Envoy stream as a push.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pemOf, type SotwResponse } from '../support/fake-envoy.js';
import { makeCa } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { envoyWithToken, eventually, startKubeSdsServer, untilReady } from '../k8s/kube-test-env.js';
import {
  certManagerOrSkip,
  createCertificate,
  createIssuer,
  fingerprint,
  fingerprints,
  readTlsSecret,
  renewCertificate,
  summary,
  untilRevision,
} from './cert-manager-env.js';

const TRUST_NAMESPACE = 'cert-manager';
const BUNDLE = '/apis/trust.cert-manager.io/v1alpha1/bundles';
const caSet = (r: SotwResponse): string[] => fingerprints(pemOf(r.secrets[0]?.validation_context?.trusted_ca)).sort();

test('trust-manager: a Bundle in the gateway namespace is served as configmap://, and changes to its sources are pushed', async (t) => {
  const env = await certManagerOrSkip(t, { trustNamespace: TRUST_NAMESPACE });
  if (!env) return;
  const { cluster, admin } = env;
  let server: TestServer | undefined;
  env.defer(() => server?.stop());

  // cert-manager's root CA, in trust-manager's trust namespace.
  await createIssuer(admin, { kind: 'Issuer', name: 'selfsigned' }, { selfSigned: {} }, TRUST_NAMESPACE);
  await createCertificate(admin, TRUST_NAMESPACE, 'backend-root', {
    secretName: 'backend-root',
    commonName: 'Backend Root CA',
    isCA: true,
    usages: ['cert sign', 'crl sign', 'digital signature'],
    issuerRef: { kind: 'Issuer', name: 'selfsigned' },
  });
  const root1 = await readTlsSecret(admin, TRUST_NAMESPACE, 'backend-root');

  // The gateway's namespace opts in to the bundle by label.
  await admin.create('/api/v1/namespaces', { metadata: { name: 'gateway', labels: { 'trust.example.com/backend': 'true' } } });
  const bundle = (sources: Array<Record<string, unknown>>): Record<string, unknown> => ({
    apiVersion: 'trust.cert-manager.io/v1alpha1',
    kind: 'Bundle',
    metadata: { name: 'backend-trust' },
    spec: {
      sources,
      target: {
        configMap: { key: 'trust-bundle.pem' },
        namespaceSelector: { matchLabels: { 'trust.example.com/backend': 'true' } },
      },
    },
  });
  await admin.create(BUNDLE, bundle([{ secret: { name: 'backend-root', key: 'ca.crt' } }]));

  const gatewayToken = await admin.serviceAccountToken('gateway', 'gw');
  server = await startKubeSdsServer(cluster, { kubernetes: { configMapKeys: ['ca.crt', 'trust-bundle.pem'] } });
  await untilReady(server);
  const envoy = envoyWithToken(server, gatewayToken);
  env.defer(() => envoy.close());
  const s = envoy.sotw();
  s.request({ names: ['configmap://gateway/backend-trust'] });

  await t.test('the ConfigMap trust-manager writes is served as configmap://gateway/backend-trust', async () => {
    const r = await s.response(30_000);
    s.ack(r);
    assert.equal(r.secrets[0]?.name, 'configmap://gateway/backend-trust');
    assert.deepEqual(caSet(r), [fingerprint(root1.caPem)]);
  });

  await t.test('changes to the Bundle sources are pushed: an added inLine CA, then a renewed root', async () => {
    const latencies: number[] = [];
    const extra = makeCa('Partner CA');
    const current = await admin.client.request<Record<string, unknown> & { metadata: Record<string, unknown> }>(
      'GET',
      `${BUNDLE}/backend-trust`,
    );
    let started = performance.now();
    await admin.client.request('PUT', `${BUNDLE}/backend-trust`, {
      body: { ...bundle([{ secret: { name: 'backend-root', key: 'ca.crt' } }, { inLine: extra.certPem }]), metadata: current.metadata },
    });
    let r = await s.response(30_000);
    latencies.push(performance.now() - started);
    s.ack(r);
    assert.deepEqual(caSet(r), [fingerprint(root1.caPem), fingerprint(extra.certPem)].sort());

    // cert-manager renews the root (new key, new self-signed certificate): trust-manager
    // follows its source Secret, and the server its ConfigMap.
    started = performance.now();
    const revision = await renewCertificate(admin, TRUST_NAMESPACE, 'backend-root');
    await untilRevision(admin, TRUST_NAMESPACE, 'backend-root', revision);
    const root2 = await readTlsSecret(admin, TRUST_NAMESPACE, 'backend-root');
    assert.notEqual(fingerprint(root2.caPem), fingerprint(root1.caPem));
    const want = [fingerprint(root2.caPem), fingerprint(extra.certPem)].sort();
    await eventually(
      async () => {
        r = await s.response(30_000);
        s.ack(r);
        return JSON.stringify(caSet(r)) === JSON.stringify(want);
      },
      30_000,
      'the renewed root in the pushed bundle',
    );
    latencies.push(performance.now() - started);
    t.diagnostic(`trust-manager, source change -> push at the stream (Bundle edit; root renewal incl. issuance), ${summary(latencies)}`);
  });
});
