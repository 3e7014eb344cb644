// End to end with real TLS: a TLS server fed by an SDS stream (playing Envoy) swaps its
// context on each push. After the PEM files rotate, a new `openssl s_client` handshake
// sees the new certificate while a connection opened before keeps working.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tls from 'node:tls';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';
import { makeFixtures, startTestServer, type Fixtures, type TestServer } from '../support/test-server.js';

let dir: string;
let fx: Fixtures;
let server: TestServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sds-e2e-'));
  fx = makeFixtures();
  mkdirSync(join(dir, 'web'));
  writeFileSync(join(dir, 'web', 'tls.crt'), fx.web1.certPem);
  writeFileSync(join(dir, 'web', 'tls.key'), fx.web1.keyPem);
  server = await startTestServer({
    secrets: [
      { name: 'web', tlsCertificate: { certificateChainFile: join(dir, 'web', 'tls.crt'), privateKeyFile: join(dir, 'web', 'tls.key') } },
    ],
  });
});
after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The certificate a fresh `openssl s_client` handshake is shown, as a fingerprint. */
function handshakeFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'web.example.com'],
      { timeout: 10_000 },
      (err, stdout) => {
        const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout)?.[0];
        if (!pem) {
          reject(err ?? new Error(`no certificate in s_client output: ${stdout}`));
          return;
        }
        resolve(new X509Certificate(pem).fingerprint256);
      },
    );
    child.stdin?.end();
  });
}

test('a rotation of the PEM files reaches a TLS server over SDS; new handshakes see it, old connections keep working', async () => {
  // The "Envoy": an SDS stream whose every push becomes the TLS server's context.
  const envoy = new FakeEnvoy(server.grpcAddress!);
  const sds = envoy.sotw();
  sds.request({ names: ['web'] });
  const first = await sds.response();
  sds.ack(first);
  const cert = first.secrets[0]!.tls_certificate!;
  const tlsServer = tls.createServer({ cert: pemOf(cert.certificate_chain), key: pemOf(cert.private_key) }, (socket) =>
    socket.on('data', (d) => socket.write(`echo:${d}`)),
  );
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  const port = (tlsServer.address() as AddressInfo).port;
  let pushes = 0;
  const applied = (async () => {
    const next = await sds.response(15_000);
    sds.ack(next);
    const c = next.secrets[0]!.tls_certificate!;
    tlsServer.setSecureContext({ cert: pemOf(c.certificate_chain), key: pemOf(c.private_key) });
    pushes++;
  })();

  const fp1 = new X509Certificate(fx.web1.certPem).fingerprint256;
  const fp2 = new X509Certificate(fx.web2.certPem).fingerprint256;
  assert.equal(await handshakeFingerprint(port), fp1);

  // A long-lived connection opened before the rotation.
  const old = tls.connect({ host: '127.0.0.1', port, servername: 'web.example.com', ca: fx.ca.certPem });
  await new Promise<void>((r) => old.once('secureConnect', () => r()));
  assert.equal(old.getPeerX509Certificate()!.fingerprint256, fp1);

  // Rotate the files the way a writer should: new files, then atomic renames.
  writeFileSync(join(dir, 'web', '.tls.key.new'), fx.web2.keyPem);
  writeFileSync(join(dir, 'web', '.tls.crt.new'), fx.web2.certPem);
  renameSync(join(dir, 'web', '.tls.key.new'), join(dir, 'web', 'tls.key'));
  renameSync(join(dir, 'web', '.tls.crt.new'), join(dir, 'web', 'tls.crt'));
  await applied;
  assert.equal(pushes, 1);

  assert.equal(await handshakeFingerprint(port), fp2, 'a new handshake sees the new certificate');
  old.write('still-there');
  const reply = await new Promise<string>((r) => old.once('data', (d: Buffer) => r(d.toString())));
  assert.equal(reply, 'echo:still-there', 'the connection opened before the rotation keeps working');

  old.destroy();
  tlsServer.close();
  envoy.close();
});
