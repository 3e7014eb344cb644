// The seed's flow end to end with the real cert-manager: a selfSigned ClusterIssuer makes
// a root CA, a CA ClusterIssuer signs a leaf for the gateway and a leaf for a backend.
// Two "Envoys" fed by SDS: the backend serves its leaf; the gateway serves its own leaf to
// clients and re-encrypts to the backend, trusting the backend's CA
// (kubernetes://backend/backend-tls-cacert). Real TLS handshakes (Node tls) cross both
// hops, before and after cert-manager rotates both leaves.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import * as tls from 'node:tls';
import { pemOf, type SotwResponse, type SotwStream } from '../support/fake-envoy.js';
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
  untilRevision,
} from './cert-manager-env.js';

const GATEWAY_HOST = 'gateway.example.com';
const BACKEND_HOST = 'backend.backend.svc.cluster.local';

const certOf = (r: SotwResponse): { cert: string; key: string } => ({
  cert: pemOf(r.secrets[0]?.tls_certificate?.certificate_chain),
  key: pemOf(r.secrets[0]?.tls_certificate?.private_key),
});
const caOf = (r: SotwResponse): string => pemOf(r.secrets[0]?.validation_context?.trusted_ca);

/** Applies every push of an SDS stream (acking it) until stopped; the latest is kept. */
function follow(stream: SotwStream, apply: (r: SotwResponse) => void): { stop(): void } {
  let stopped = false;
  void (async () => {
    while (!stopped && !stream.ended) {
      let r: SotwResponse;
      try {
        r = await stream.response(1_000);
      } catch {
        continue; // nothing pushed within the second: ask again
      }
      apply(r);
      stream.ack(r);
    }
  })();
  return { stop: () => (stopped = true) };
}

interface Hop {
  reply: string;
  /** What the client saw from the gateway, and what the gateway saw from the backend. */
  gatewayCert: string;
  backendCert: string;
}

test('seed flow: selfSigned root -> CA issuer -> gateway and backend leaves; re-encryption survives a rotation of both', async (t) => {
  const env = await certManagerOrSkip(t);
  if (!env) return;
  const { cluster, admin } = env;
  let server: TestServer | undefined;
  const closers: Array<() => void> = [];
  env.defer(async () => {
    for (const c of closers.reverse()) c();
    await server?.stop();
  });

  // --- cert-manager: the PKI a user would declare.
  await createIssuer(admin, { kind: 'ClusterIssuer', name: 'selfsigned' }, { selfSigned: {} });
  await createCertificate(admin, 'cert-manager', 'root-ca', {
    secretName: 'root-ca',
    commonName: 'Seed Root CA',
    isCA: true,
    usages: ['cert sign', 'crl sign', 'digital signature'],
    issuerRef: { kind: 'ClusterIssuer', name: 'selfsigned' },
  });
  await createIssuer(admin, { kind: 'ClusterIssuer', name: 'root-ca' }, { ca: { secretName: 'root-ca' } });
  await admin.ensureNamespace('gateway');
  await admin.ensureNamespace('backend');
  await createCertificate(admin, 'gateway', 'gateway', {
    secretName: 'gateway-tls',
    dnsNames: [GATEWAY_HOST],
    usages: ['digital signature', 'server auth'],
    issuerRef: { kind: 'ClusterIssuer', name: 'root-ca' },
  });
  await createCertificate(admin, 'backend', 'backend', {
    secretName: 'backend-tls',
    dnsNames: [BACKEND_HOST],
    usages: ['digital signature', 'server auth'],
    issuerRef: { kind: 'ClusterIssuer', name: 'root-ca' },
  });
  const root = await readTlsSecret(admin, 'cert-manager', 'root-ca');

  // --- the SDS server, and one ServiceAccount per Envoy, each allowed its own Secret.
  const gatewayToken = await admin.serviceAccountToken('gateway', 'gateway-envoy');
  const backendToken = await admin.serviceAccountToken('backend', 'backend-envoy');
  await admin.allowSecretRead('gateway', { namespace: 'gateway', name: 'gateway-envoy' }, 'envoy-reads-tls', ['gateway-tls']);
  await admin.allowSecretRead('backend', { namespace: 'backend', name: 'backend-envoy' }, 'envoy-reads-tls', ['backend-tls']);
  // The backend's CA across namespaces: RBAC on the name `backend-tls-cacert` (no such
  // Secret is needed), which grants the CA and never the backend's key.
  await admin.allowSecretRead('backend', { namespace: 'gateway', name: 'gateway-envoy' }, 'gateway-reads-backend-ca', [
    'backend-tls-cacert',
  ]);
  server = await startKubeSdsServer(cluster);
  await untilReady(server);

  // --- the backend "Envoy": a TLS server whose certificate comes from SDS.
  const backendEnvoy = envoyWithToken(server, backendToken, 'backend-1');
  closers.push(() => backendEnvoy.close());
  const backendSds = backendEnvoy.sotw();
  backendSds.request({ names: ['kubernetes://backend/backend-tls'] });
  const firstBackend = await backendSds.response(15_000);
  backendSds.ack(firstBackend);
  let backendServed = certOf(firstBackend).cert;
  const backend = tls.createServer(certOf(firstBackend), (socket) => socket.on('data', (d) => socket.write(`backend says: ${d}`)));
  closers.push(() => backend.close());
  const backendFollow = follow(backendSds, (r) => {
    backend.setSecureContext(certOf(r));
    backendServed = certOf(r).cert;
  });
  closers.push(() => backendFollow.stop());
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const backendPort = (backend.address() as AddressInfo).port;

  // --- the gateway "Envoy": listener certificate and upstream validation context from SDS.
  const gatewayEnvoy = envoyWithToken(server, gatewayToken, 'gateway-1');
  closers.push(() => gatewayEnvoy.close());
  const listenerSds = gatewayEnvoy.sotw();
  listenerSds.request({ names: ['kubernetes://gateway/gateway-tls'] });
  const upstreamCaSds = gatewayEnvoy.sotw();
  upstreamCaSds.request({ names: ['kubernetes://backend/backend-tls-cacert'] });
  const firstListener = await listenerSds.response(15_000);
  listenerSds.ack(firstListener);
  const firstUpstreamCa = await upstreamCaSds.response(15_000);
  upstreamCaSds.ack(firstUpstreamCa);
  let gatewayServed = certOf(firstListener).cert;
  let upstreamCa = caOf(firstUpstreamCa);
  assert.equal(fingerprint(upstreamCa), fingerprint(root.certPem), "the gateway trusts the backend's CA: cert-manager's root");

  const upstreamCerts: string[] = []; // the backend certificate each upstream handshake saw
  const gateway = tls.createServer(certOf(firstListener), (client) => {
    // Re-encryption: a new TLS connection to the backend, verified against the SDS CA.
    const upstream = tls.connect({ host: '127.0.0.1', port: backendPort, servername: BACKEND_HOST, ca: upstreamCa });
    upstream.once('secureConnect', () => {
      upstreamCerts.push(upstream.getPeerX509Certificate()!.toString());
      client.pipe(upstream).pipe(client);
    });
    upstream.once('error', () => client.destroy());
    client.once('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
  });
  closers.push(() => gateway.close());
  const listenerFollow = follow(listenerSds, (r) => {
    gateway.setSecureContext(certOf(r));
    gatewayServed = certOf(r).cert;
  });
  const caFollow = follow(upstreamCaSds, (r) => (upstreamCa = caOf(r)));
  closers.push(
    () => listenerFollow.stop(),
    () => caFollow.stop(),
  );
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  const gatewayPort = (gateway.address() as AddressInfo).port;

  /** A client request through gateway -> backend, trusting the root. */
  const hop = async (message: string, ca = root.certPem): Promise<Hop> => {
    const before = upstreamCerts.length;
    const client = tls.connect({ host: '127.0.0.1', port: gatewayPort, servername: GATEWAY_HOST, ca });
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('secureConnect', resolve);
        client.once('error', reject);
      });
      const gatewayCert = client.getPeerX509Certificate()!.toString();
      const reply = new Promise<string>((resolve, reject) => {
        client.once('data', (d: Buffer) => resolve(d.toString()));
        client.once('error', reject);
      });
      client.write(message);
      return { reply: await reply, gatewayCert, backendCert: upstreamCerts[before] ?? '' };
    } finally {
      client.destroy();
    }
  };

  await t.test('a client reaches the backend through the gateway: both hops verified TLS', async () => {
    const gw = await readTlsSecret(admin, 'gateway', 'gateway-tls');
    const be = await readTlsSecret(admin, 'backend', 'backend-tls');
    const h = await hop('hello');
    assert.equal(h.reply, 'backend says: hello');
    assert.equal(fingerprint(h.gatewayCert), fingerprint(gw.certPem), 'the client saw the gateway leaf cert-manager issued');
    assert.equal(fingerprint(h.backendCert), fingerprint(be.certPem), 'the gateway saw the backend leaf cert-manager issued');
    // The validation context is what makes the upstream hop work: another CA is refused.
    const stranger = makeCa('Not the backend CA');
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port: backendPort, servername: BACKEND_HOST, ca: stranger.certPem });
        c.once('secureConnect', () => {
          c.destroy();
          resolve();
        });
        c.once('error', reject);
      }),
      /certificate/i,
    );
  });

  await t.test('cert-manager rotates both leaves: new handshakes see the new ones, an open connection keeps working', async () => {
    const gw1 = await readTlsSecret(admin, 'gateway', 'gateway-tls');
    const be1 = await readTlsSecret(admin, 'backend', 'backend-tls');
    // A connection opened before the rotation.
    const open = tls.connect({ host: '127.0.0.1', port: gatewayPort, servername: GATEWAY_HOST, ca: root.certPem });
    closers.push(() => open.destroy());
    await new Promise<void>((r) => open.once('secureConnect', () => r()));

    const gwRevision = await renewCertificate(admin, 'gateway', 'gateway');
    const beRevision = await renewCertificate(admin, 'backend', 'backend');
    await untilRevision(admin, 'gateway', 'gateway', gwRevision);
    await untilRevision(admin, 'backend', 'backend', beRevision);
    const gw2 = await readTlsSecret(admin, 'gateway', 'gateway-tls');
    const be2 = await readTlsSecret(admin, 'backend', 'backend-tls');
    assert.notEqual(fingerprint(gw2.certPem), fingerprint(gw1.certPem));
    assert.notEqual(fingerprint(be2.certPem), fingerprint(be1.certPem));
    assert.notEqual(gw2.keyPem, gw1.keyPem, 'rotationPolicy Always: a new key');

    // Both Envoys applied the pushes.
    await eventually(() => gatewayServed === gw2.certPem && backendServed === be2.certPem, 30_000, 'both leaves pushed and applied');
    assert.equal(fingerprint(upstreamCa), fingerprint(root.certPem), 'same root: the validation context stays');

    const h = await hop('after rotation');
    assert.equal(h.reply, 'backend says: after rotation');
    assert.equal(fingerprint(h.gatewayCert), fingerprint(gw2.certPem), 'the client sees the new gateway leaf');
    assert.equal(fingerprint(h.backendCert), fingerprint(be2.certPem), 'the gateway sees the new backend leaf');

    const reply = new Promise<string>((r) => open.once('data', (d: Buffer) => r(d.toString())));
    open.write('still here');
    assert.equal(await reply, 'backend says: still here', 'the connection opened before the rotation keeps working');
  });
});
