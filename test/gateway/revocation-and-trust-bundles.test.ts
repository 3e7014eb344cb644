// Istio's Secret keys `ca.crl` (served as the validation context's `crl`) and
// `tls.ocsp-staple` (the certificate's `ocsp_staple`), and ClusterTrustBundles as a bundle
// source, against a real kube-apiserver (certificates.k8s.io/v1, GA in 1.37).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { makeCrl, makeOcspResponse } from '../support/openssl-revocation.js';
import { pemOf } from '../support/fake-envoy.js';
import { b64, clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, untilReady } from '../k8s/kube-test-env.js';

const CTB = '/apis/certificates.k8s.io/v1/clustertrustbundles';

test('ca.crl, tls.ocsp-staple and ClusterTrustBundles reach Envoy', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const ca = makeCa('Web CA');
  const other = makeCa('Other CA');
  const leaf = makeLeaf(ca, ['web.example']);
  const revokedLeaf = makeLeaf(ca, ['old.example']);
  const crl = makeCrl(ca, [revokedLeaf.certPem]);
  const staple = makeOcspResponse(ca, leaf);
  const ns = await admin.namespace('rev');
  // Values base64 already: the staple is binary (admin.putSecret takes text).
  const putWeb = async (extra: Record<string, string>): Promise<void> => {
    const body = {
      metadata: { name: 'web-tls', namespace: ns },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(leaf.certPem), 'tls.key': b64(leaf.keyPem), 'ca.crt': b64(ca.certPem), ...extra },
    };
    if (Object.keys(await admin.create(`/api/v1/namespaces/${ns}/secrets`, body, true)).length === 0) {
      await admin.client.request('PUT', `/api/v1/namespaces/${ns}/secrets/web-tls`, { body });
    }
  };
  await putWeb({ 'ca.crl': b64(crl), 'tls.ocsp-staple': staple.toString('base64') });
  const sa = { namespace: ns, name: 'gateway' };
  const token = await admin.serviceAccountToken(ns, 'gateway');
  await admin.allowSecretRead(ns, sa, 'gateway-reads-web', ['web-tls']);

  const server = await startKubeSdsServer(cluster, { kubernetes: { clusterTrustBundles: true } });
  t.after(() => server.stop());
  await untilReady(server);
  const CERT = `kubernetes://${ns}/web-tls`;
  const CACERT = `kubernetes://${ns}/web-tls-cacert`;
  await eventually(() => server.store.get(CERT) !== undefined && server.store.get(CACERT) !== undefined, 10_000, 'the Secret served');

  await t.test(
    'ca.crl is the crl of the -cacert validation context; a CRL no CA of it signed is refused, the last good stays',
    async (st) => {
      const envoy = envoyWithToken(server, token);
      st.after(() => envoy.close());
      const s = envoy.sotw();
      s.request({ names: [CACERT] });
      const r = await s.response(10_000);
      assert.equal(pemOf(r.secrets[0]?.validation_context?.trusted_ca), ca.certPem);
      assert.equal(pemOf(r.secrets[0]?.validation_context?.crl), crl);
      s.ack(r);
      const before = server.store.get(CACERT)!.version;
      await putWeb({ 'ca.crl': b64(makeCrl(other)), 'tls.ocsp-staple': staple.toString('base64') });
      await eventually(
        async () =>
          (await admin.eventsFor(ns, 'web-tls')).some((e) => e.reason === 'SecretRejected' && (e.message ?? '').includes('CRL_INVALID')),
        10_000,
        'a CRL_INVALID Event',
      );
      assert.equal(server.store.get(CACERT)!.version, before);
      await s.nothing();
    },
  );

  await t.test('tls.ocsp-staple is the ocsp_staple of the certificate; a staple for another certificate is refused', async (st) => {
    await putWeb({ 'ca.crl': b64(crl), 'tls.ocsp-staple': staple.toString('base64') });
    const envoy = envoyWithToken(server, token);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: [CERT] });
    const r = await s.response(10_000);
    assert.deepEqual(Buffer.from(r.secrets[0]?.tls_certificate?.ocsp_staple?.inline_bytes ?? []), staple);
    s.ack(r);
    const before = server.store.get(CERT)!.version;
    await putWeb({ 'ca.crl': b64(crl), 'tls.ocsp-staple': makeOcspResponse(ca, revokedLeaf).toString('base64') });
    await eventually(
      async () =>
        (await admin.eventsFor(ns, 'web-tls')).some((e) => e.reason === 'SecretRejected' && (e.message ?? '').includes('OCSP_INVALID')),
      10_000,
      'an OCSP_INVALID Event',
    );
    assert.equal(server.store.get(CERT)!.version, before);
    await s.nothing();
  });

  await t.test('ClusterTrustBundles: by name, by signer, by signer and label; each change pushed', async (st) => {
    const rootA = makeCa('Signer root A');
    const rootB = makeCa('Signer root B');
    const plain = makeCa('Plain root');
    const bundle = (name: string, trustBundle: string, signerName?: string, labels?: Record<string, string>): Record<string, unknown> => ({
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'ClusterTrustBundle',
      metadata: { name, ...(labels ? { labels } : {}) },
      spec: { ...(signerName ? { signerName } : {}), trustBundle },
    });
    await admin.create(CTB, bundle('plain-roots', plain.certPem));
    await admin.create(CTB, bundle('example.com:backend:a', rootA.certPem, 'example.com/backend', { tier: 'prod' }));
    await admin.create(CTB, bundle('example.com:backend:b', rootB.certPem, 'example.com/backend', { tier: 'test' }));
    const envoy = envoyWithToken(server, token);
    st.after(() => envoy.close());
    const expectBundle = async (name: string, pem: string): Promise<void> => {
      const s = envoy.sotw();
      s.request({ names: [name] });
      const r = await s.response(10_000);
      assert.equal(pemOf(r.secrets[0]?.validation_context?.trusted_ca), pem, name);
      s.cancel();
    };
    await expectBundle('clustertrustbundle://plain-roots', plain.certPem);
    await expectBundle('clustertrustbundle://example.com:backend:a', rootA.certPem);
    await expectBundle('clustertrustbundle-signer://example.com/backend', rootA.certPem + rootB.certPem);
    await expectBundle('clustertrustbundle-signer://example.com/backend?tier=prod', rootA.certPem);
    // A bundle of the signer changes: the signer's names are pushed.
    const s = envoy.sotw();
    s.request({ names: ['clustertrustbundle-signer://example.com/backend'] });
    s.ack(await s.response(10_000));
    const rootC = makeCa('Signer root C');
    await admin.client.request('PATCH', `${CTB}/example.com:backend:b`, {
      body: { spec: { trustBundle: rootC.certPem } },
      contentType: 'application/merge-patch+json',
    });
    const r = await s.response(10_000);
    assert.equal(pemOf(r.secrets[0]?.validation_context?.trusted_ca), rootA.certPem + rootC.certPem);
    s.ack(r);
    // Deleted: the signer name keeps the rest.
    await admin.client.request('DELETE', `${CTB}/example.com:backend:a`);
    const r2 = await s.response(10_000);
    assert.equal(pemOf(r2.secrets[0]?.validation_context?.trusted_ca), rootC.certPem);
    await eventually(() => server.store.get('clustertrustbundle://example.com:backend:a') === undefined, 10_000, 'the deleted bundle gone');
    // Callers with no ServiceAccount get none of it.
    const anonymous = envoyWithToken(server, undefined);
    st.after(() => anonymous.close());
    const a = anonymous.sotw();
    a.request({ names: ['clustertrustbundle://plain-roots'] });
    await a.nothing();
  });
});
