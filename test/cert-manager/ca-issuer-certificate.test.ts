// The real cert-manager against a real kube-apiserver: a Certificate from a CA Issuer is
// served from the Secret cert-manager writes (kubernetes://apps/web-tls and its -cacert),
// and a renewal forced as `cmctl renew` does it reaches the Envoy stream as a new version.
// The time from the Secret's update (seen by a watch of our own) to the push is reported.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import type { WatchHandle } from '../../src/kubernetes/kube-client.js';
import { pemOf, type SotwResponse } from '../support/fake-envoy.js';
import { makeCa } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { envoyWithToken, eventually, startKubeSdsServer, untilReady } from '../k8s/kube-test-env.js';
import {
  certManagerOrSkip,
  createCertificate,
  createIssuer,
  fingerprint,
  readTlsSecret,
  renewCertificate,
  summary,
  untilRevision,
} from './cert-manager-env.js';

const chainOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.tls_certificate?.certificate_chain);
const keyOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.tls_certificate?.private_key);
const caOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.validation_context?.trusted_ca);

test('cert-manager: a Certificate from a CA Issuer is served, and a forced renewal is pushed', async (t) => {
  const env = await certManagerOrSkip(t);
  if (!env) return;
  const { cluster, admin } = env;
  let server: TestServer | undefined;
  env.defer(() => server?.stop());

  // The CA Issuer's key pair, as a user would bring it.
  const ca = makeCa('Apps CA');
  await admin.ensureNamespace('apps');
  await admin.putSecret('apps', 'apps-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
  await createIssuer(admin, { kind: 'Issuer', name: 'apps-ca' }, { ca: { secretName: 'apps-ca' } }, 'apps');
  await createCertificate(admin, 'apps', 'web', {
    secretName: 'web-tls',
    dnsNames: ['web.apps.example'],
    usages: ['digital signature', 'server auth'],
    issuerRef: { kind: 'Issuer', name: 'apps-ca' },
  });

  await admin.ensureNamespace('gateway');
  const gatewayToken = await admin.serviceAccountToken('gateway', 'gw');
  await admin.allowSecretRead('apps', { namespace: 'gateway', name: 'gw' }, 'gw-reads-web', ['web-tls']);
  server = await startKubeSdsServer(cluster);
  await untilReady(server);

  const envoy = envoyWithToken(server, gatewayToken);
  env.defer(() => envoy.close());
  const cert = envoy.sotw();
  cert.request({ names: ['kubernetes://apps/web-tls'] });
  const cacert = envoy.sotw();
  cacert.request({ names: ['kubernetes://apps/web-tls-cacert'] });

  await t.test('the Secret cert-manager wrote is served as kubernetes://apps/web-tls and -cacert', async () => {
    const written = await readTlsSecret(admin, 'apps', 'web-tls');
    const r = await cert.response(15_000);
    cert.ack(r);
    assert.equal(r.secrets[0]?.name, 'kubernetes://apps/web-tls');
    assert.equal(chainOf(r), written.certPem);
    assert.equal(keyOf(r), written.keyPem);
    const leaf = new X509Certificate(written.certPem);
    assert.ok(leaf.checkIssued(new X509Certificate(ca.certPem)), 'issued by the Issuer CA');
    assert.match(leaf.subjectAltName ?? '', /DNS:web\.apps\.example/);

    const c = await cacert.response(15_000);
    cacert.ack(c);
    assert.equal(c.secrets[0]?.name, 'kubernetes://apps/web-tls-cacert');
    assert.equal(fingerprint(caOf(c)), fingerprint(ca.certPem), 'ca.crt that cert-manager wrote is the Issuer CA');
  });

  await t.test('a renewal forced as `cmctl renew` does it is pushed as a new version; Secret-update-to-push reported', async () => {
    // Our own watch on the Secret stamps when the API server announces cert-manager's write.
    const updatedAt = new Map<string, number>(); // tls.crt -> time the watch saw it
    const watch: WatchHandle = await admin.client.watch(
      '/api/v1/namespaces/apps/secrets',
      { fieldSelector: 'metadata.name=web-tls' },
      (ev) => {
        const data = (ev.object as { data?: Record<string, string> }).data;
        const crt = Buffer.from(data?.['tls.crt'] ?? '', 'base64').toString('utf8');
        if (ev.type === 'MODIFIED' && crt !== '' && !updatedAt.has(crt)) updatedAt.set(crt, performance.now());
      },
    );
    watch.done.catch(() => {}); // ends with the cluster; the figures below need no more

    let last = (await readTlsSecret(admin, 'apps', 'web-tls')).certPem;
    const secretToPush: number[] = [];
    const renewToPush: number[] = [];
    for (let i = 0; i < 8; i++) {
      const requested = performance.now();
      const revision = await renewCertificate(admin, 'apps', 'web');
      const r = await cert.response(30_000);
      const pushedAt = performance.now();
      cert.ack(r);
      const pushed = chainOf(r);
      assert.notEqual(pushed, last, 'a new certificate');
      assert.notEqual(keyOf(r), '', 'with its key');
      await untilRevision(admin, 'apps', 'web', revision);
      const written = await readTlsSecret(admin, 'apps', 'web-tls');
      assert.equal(pushed, written.certPem, 'the push carries what cert-manager wrote');
      assert.equal(keyOf(r), written.keyPem);
      // Two watches on one API server: ours may hear of the update a little after the
      // server's push (the figure is then negative, and reported as it is).
      await eventually(() => updatedAt.has(pushed), 10_000, 'our watch to see the Secret update');
      secretToPush.push(pushedAt - updatedAt.get(pushed)!);
      renewToPush.push(pushedAt - requested);
      last = pushed;
    }
    watch.abort();
    // The CA did not change, so the validation context is not pushed again.
    await cacert.nothing(300);
    t.diagnostic(`cert-manager renewal, Secret update (MODIFIED at a test watch) -> push at the stream, ${summary(secretToPush)}`);
    t.diagnostic(`cert-manager renewal, cmctl-style trigger -> push at the stream, ${summary(renewToPush)}`);
  });
});
