// Gateway API against a real kube-apiserver with the real CRDs (sigs.k8s.io/gateway-api
// v1.6.3, standard channel):
// - `kubernetes-gateway://ns/secret` is served to the callers that run a Gateway whose
//   listener names the Secret (bound through the token's pod and its gateway-name label),
//   across namespaces only while a ReferenceGrant allows it;
// - `backendtlspolicy://ns/policy` serves a BackendTLSPolicy's CA certificates with its
//   SANs as match_typed_subject_alt_names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeEnvoy, pemOf, type SotwStream } from '../support/fake-envoy.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, untilReady } from '../k8s/kube-test-env.js';
import { GATEWAY_API, gatewayPodToken, installGatewayApiCrds } from './gateway-env.js';

const DENIED_MSG = 'secret name denied to caller';

async function expectDenied(server: TestServer, envoy: FakeEnvoy, name: string): Promise<SotwStream> {
  const from = server.logs.length;
  const s = envoy.sotw();
  s.request({ names: [name] });
  await eventually(
    () =>
      server.logs
        .slice(from)
        .some((l) => l['msg'] === DENIED_MSG && (l['secret'] === name || (l['secrets'] as string[] | undefined)?.includes(name))),
    10_000,
    `denial of ${name}`,
  );
  await s.nothing();
  return s;
}

test('Gateway API: certificateRefs with ReferenceGrant, BackendTLSPolicy', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  await installGatewayApiCrds(cluster);

  const ca = makeCa('Gateway CA');
  const local1 = makeLeaf(ca, ['edge.example']);
  const shared1 = makeLeaf(ca, ['shared.example']);
  const shared2 = makeLeaf(ca, ['shared.example', 'v2.shared.example']);
  const shared3 = makeLeaf(ca, ['shared.example', 'v3.shared.example']);
  const gwNs = await admin.namespace('gw');
  const certNs = await admin.namespace('certs');
  await admin.putSecret(gwNs, 'edge-tls', { 'tls.crt': local1.certPem, 'tls.key': local1.keyPem });
  await admin.putSecret(certNs, 'shared-tls', { 'tls.crt': shared1.certPem, 'tls.key': shared1.keyPem });
  await admin.create(`${GATEWAY_API}/namespaces/${gwNs}/gateways`, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'edge' },
    spec: {
      gatewayClassName: 'envoy',
      listeners: [
        {
          name: 'local',
          protocol: 'HTTPS',
          port: 443,
          hostname: 'edge.example',
          tls: { mode: 'Terminate', certificateRefs: [{ name: 'edge-tls' }] },
        },
        {
          name: 'shared',
          protocol: 'HTTPS',
          port: 443,
          hostname: 'shared.example',
          tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'shared-tls', namespace: certNs }] },
        },
      ],
    },
  });
  const edgeToken = await gatewayPodToken(admin, gwNs, 'gateway', 'edge-7d9f', 'edge');
  const otherToken = await gatewayPodToken(admin, gwNs, 'gateway', 'other-5c4b', 'other');
  const unboundToken = await admin.serviceAccountToken(gwNs, 'gateway');

  const server = await startKubeSdsServer(cluster, { kubernetes: { gatewayApi: true } });
  t.after(() => server.stop());
  await untilReady(server);
  const EDGE = `kubernetes-gateway://${gwNs}/edge-tls`;
  const SHARED = `kubernetes-gateway://${certNs}/shared-tls`;
  await eventually(
    () => server.store.get(EDGE) !== undefined && server.store.get(SHARED) !== undefined,
    10_000,
    'referenced Secrets served under the gateway scheme',
  );

  await t.test("the pods of the Gateway get a Secret of the Gateway's namespace its listener names", async (st) => {
    const envoy = envoyWithToken(server, edgeToken);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: [EDGE] });
    const r = await s.response(10_000);
    assert.equal(pemOf(r.secrets[0]?.tls_certificate?.certificate_chain), local1.certPem);
    assert.equal(pemOf(r.secrets[0]?.tls_certificate?.private_key), local1.keyPem);
  });

  await t.test('the same ServiceAccount in a pod of another Gateway, or with a token bound to no pod, gets nothing', async (st) => {
    for (const token of [otherToken, unboundToken]) {
      const envoy = envoyWithToken(server, token);
      st.after(() => envoy.close());
      await expectDenied(server, envoy, EDGE);
    }
    // Nor does the Gateway binding open the plain Kubernetes name: that stays RBAC's.
    const envoy = envoyWithToken(server, edgeToken);
    st.after(() => envoy.close());
    await expectDenied(server, envoy, `kubernetes://${gwNs}/edge-tls`);
    // A Secret no listener names is not served under the gateway scheme at all.
    await admin.putSecret(gwNs, 'unnamed-tls', { 'tls.crt': local1.certPem, 'tls.key': local1.keyPem });
    await expectDenied(server, envoy, `kubernetes-gateway://${gwNs}/unnamed-tls`);
    assert.equal(server.store.get(`kubernetes-gateway://${gwNs}/unnamed-tls`), undefined);
  });

  await t.test('across namespaces: served once a ReferenceGrant allows it (no reconnect), no longer pushed when it goes', async (st) => {
    const envoy = envoyWithToken(server, edgeToken);
    st.after(() => envoy.close());
    const s = await expectDenied(server, envoy, SHARED);
    // A grant for another kind, or from another namespace, changes nothing.
    await admin.create(`${GATEWAY_API}/namespaces/${certNs}/referencegrants`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'ReferenceGrant',
      metadata: { name: 'wrong' },
      spec: {
        from: [
          { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: gwNs },
          { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'elsewhere' },
        ],
        to: [{ group: '', kind: 'Secret' }],
      },
    });
    await s.nothing();
    await admin.create(`${GATEWAY_API}/namespaces/${certNs}/referencegrants`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'ReferenceGrant',
      metadata: { name: 'gateways-of-gw' },
      spec: {
        from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: gwNs }],
        to: [{ group: '', kind: 'Secret', name: 'shared-tls' }],
      },
    });
    const r = await s.response(10_000);
    assert.equal(pemOf(r.secrets[0]?.tls_certificate?.certificate_chain), shared1.certPem);
    s.ack(r);
    // A rotation reaches it while the grant stands.
    await admin.putSecret(certNs, 'shared-tls', { 'tls.crt': shared2.certPem, 'tls.key': shared2.keyPem });
    const r2 = await s.response(10_000);
    assert.equal(pemOf(r2.secrets[0]?.tls_certificate?.certificate_chain), shared2.certPem);
    s.ack(r2);
    // The grant goes: the next rotation is not pushed (and is logged as denied).
    await admin.client.request('DELETE', `${GATEWAY_API}/namespaces/${certNs}/referencegrants/gateways-of-gw`);
    const from = server.logs.length;
    const chain = (): string => {
      const m = server.store.get(SHARED)?.material;
      return m?.kind === 'tls_certificate' ? m.certificateChain : '';
    };
    await admin.putSecret(certNs, 'shared-tls', { 'tls.crt': shared3.certPem, 'tls.key': shared3.keyPem });
    await eventually(() => chain() === shared3.certPem, 10_000, 'the third version in the store');
    await eventually(() => server.logs.slice(from).some((l) => l['msg'] === DENIED_MSG), 10_000, 'the push denied');
    await s.nothing();
    // And a new stream is refused too.
    await expectDenied(server, envoy, SHARED);
  });

  await t.test('the listener stops naming the Secret: no longer served to the Gateway', async (st) => {
    const envoy = envoyWithToken(server, edgeToken);
    st.after(() => envoy.close());
    await admin.client.request('PATCH', `${GATEWAY_API}/namespaces/${gwNs}/gateways/edge`, {
      body: {
        spec: {
          listeners: [
            {
              name: 'shared',
              protocol: 'HTTPS',
              port: 443,
              tls: { mode: 'Terminate', certificateRefs: [{ name: 'shared-tls', namespace: certNs }] },
            },
          ],
        },
      },
      contentType: 'application/merge-patch+json',
    });
    await eventually(() => server.store.get(EDGE) === undefined, 10_000, 'the unreferenced name removed');
    await expectDenied(server, envoy, EDGE);
  });

  await t.test('BackendTLSPolicy: its CA certificates and SANs as one validation context', async (st) => {
    const backendCa1 = makeCa('Backend CA 1');
    const backendCa2 = makeCa('Backend CA 2');
    const backendCa3 = makeCa('Backend CA 3');
    await admin.putConfigMap(gwNs, 'backend-ca', { 'ca.crt': backendCa1.certPem });
    await admin.putSecret(gwNs, 'backend-ca-secret', { 'ca.crt': backendCa2.certPem }, 'Opaque');
    await admin.create(`${GATEWAY_API}/namespaces/${gwNs}/backendtlspolicies`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'BackendTLSPolicy',
      metadata: { name: 'backend' },
      spec: {
        targetRefs: [{ group: '', kind: 'Service', name: 'backend' }],
        validation: {
          caCertificateRefs: [
            { group: '', kind: 'ConfigMap', name: 'backend-ca' },
            { group: '', kind: 'Secret', name: 'backend-ca-secret' },
          ],
          hostname: 'backend.internal',
          subjectAltNames: [
            { type: 'Hostname', hostname: 'api.backend.internal' },
            { type: 'URI', uri: 'spiffe://cluster.local/ns/backend/sa/api' },
          ],
        },
      },
    });
    const NAME = `backendtlspolicy://${gwNs}/backend`;
    const envoy = envoyWithToken(server, edgeToken);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: [NAME] });
    const r = await s.response(10_000);
    const secret = r.secrets[0]!;
    assert.equal(pemOf(secret.validation_context?.trusted_ca), backendCa1.certPem + backendCa2.certPem);
    assert.deepEqual(
      secret.validation_context?.match_typed_subject_alt_names?.map((m) => [m.san_type, m.matcher.exact]),
      // SanType DNS = 2, URI = 3 (decoded with the upstream protos)
      [
        [2, 'api.backend.internal'],
        [3, 'spiffe://cluster.local/ns/backend/sa/api'],
      ],
    );
    s.ack(r);
    // A referenced ConfigMap changes: pushed.
    await admin.putConfigMap(gwNs, 'backend-ca', { 'ca.crt': backendCa3.certPem });
    const r2 = await s.response(10_000);
    assert.equal(pemOf(r2.secrets[0]!.validation_context?.trusted_ca), backendCa3.certPem + backendCa2.certPem);
    s.ack(r2);
    // Without subjectAltNames the hostname is the SAN to match.
    await admin.client.request('PATCH', `${GATEWAY_API}/namespaces/${gwNs}/backendtlspolicies/backend`, {
      body: { spec: { validation: { subjectAltNames: null } } },
      contentType: 'application/merge-patch+json',
    });
    const r3 = await s.response(10_000);
    assert.deepEqual(
      r3.secrets[0]!.validation_context?.match_typed_subject_alt_names?.map((m) => [m.san_type, m.matcher.exact]),
      [[2, 'backend.internal']],
    );
    s.ack(r3);
    // A reference that does not resolve: the last good bundle stays, and the policy gets an Event.
    await admin.deleteSecret(gwNs, 'backend-ca-secret');
    await eventually(
      async () =>
        (await admin.eventsFor(gwNs, 'backend')).some(
          (e) => e.reason === 'SecretRejected' && (e.message ?? '').includes('backend-ca-secret'),
        ),
      10_000,
      'an Event on the policy',
    );
    assert.ok(server.store.get(NAME), 'the last good version stays');
    await s.nothing();
    // Another namespace's ServiceAccount needs RBAC on the policy.
    const stranger = await admin.serviceAccountToken(certNs, 'stranger');
    const other = envoyWithToken(server, stranger);
    st.after(() => other.close());
    await expectDenied(server, other, NAME);
  });
});
