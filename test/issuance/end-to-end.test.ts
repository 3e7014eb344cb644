// The engine wired into the real server: a config with an `issuance:` section issues
// certificates, the file source serves them, an SDS stream (FakeEnvoy, upstream protos)
// receives them, and a forced renewal (`envoy-sds renew`) is pushed as a new version.
// Then the same with ACME, HTTP-01 answered on the server's own HTTP port.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startBind, type BindServer } from '../harness/acme/bind.js';
import { startPebble, type PebbleServer } from '../harness/acme/pebble.js';
import { freePort, NAMED, PEBBLE, skipUnlessTools } from '../harness/acme/tools.js';
import { FakeEnvoy, pemOf, type SotwResponse } from '../support/fake-envoy.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { V, assertVerifies, selfSignedCaChain, tempDir } from './engine-support.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const run = promisify(execFile);

function http(method: string, address: string, path: string): Promise<{ status: number; body: string }> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    // A state-changing request carries what the endpoint requires (JSON and the intent header).
    const headers = method === 'POST' ? { 'content-type': 'application/json', 'x-envoy-sds-intent': 'renew' } : {};
    const req = request({ host: address.slice(0, i), port: Number(address.slice(i + 1)), path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

function leafOf(r: SotwResponse): X509Certificate {
  const chain = pemOf(r.secrets[0]?.tls_certificate?.certificate_chain);
  return new X509Certificate(chain);
}

describe('issuance engine in the real server', () => {
  let server: TestServer;
  let envoy: FakeEnvoy;
  const settings = { backoff: { initial: '200ms', max: '1s' } };

  before(async () => {
    server = await startTestServer({
      dataDir: tempDir('e2e-'),
      issuance: {
        ...settings,
        resources: selfSignedCaChain({
          leafExtra: [
            {
              apiVersion: V,
              kind: 'Certificate',
              metadata: { name: 'web', namespace: 'default' },
              spec: {
                secretName: 'web-tls',
                dnsNames: ['web.example.com'],
                issuerRef: { name: 'ca', kind: 'ClusterIssuer' },
                privateKey: { algorithm: 'ECDSA' },
              },
            },
          ],
        }),
      },
    });
    envoy = new FakeEnvoy(server.grpcAddress!);
  });
  after(async () => {
    envoy?.close();
    await server?.stop();
  });

  test('an issued certificate and its CA reach an SDS stream; a forced renewal is pushed as a new version', async (t) => {
    const t0 = Date.now();
    const tls = envoy.sotw();
    tls.request({ names: ['web-tls'] });
    const ca = envoy.sotw();
    ca.request({ names: ['web-tls-cacert'] });
    const r1 = await tls.response(15_000);
    const c1 = await ca.response(15_000);
    tls.ack(r1);
    ca.ack(c1);
    t.diagnostic(`first certificate served after ${Date.now() - t0} ms`);
    const rootPem = pemOf(c1.secrets[0]?.validation_context?.trusted_ca);
    const chain1 = pemOf(r1.secrets[0]?.tls_certificate?.certificate_chain);
    assert.equal(leafOf(r1).subjectAltName, 'DNS:web.example.com');
    assertVerifies(rootPem, chain1, 'served leaf against the served CA');
    assert.match(pemOf(r1.secrets[0]?.tls_certificate?.private_key), /BEGIN RSA PRIVATE KEY|BEGIN EC PRIVATE KEY/);

    // The files are served as soon as they are written; the controller records Ready just after.
    let ready = await http('GET', server.httpAddress!, '/readyz');
    for (const deadline = Date.now() + 10_000; ready.status !== 200 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 20));
      ready = await http('GET', server.httpAddress!, '/readyz');
    }
    assert.equal(ready.status, 200, ready.body);
    const status = JSON.parse((await http('GET', server.httpAddress!, '/issuance/status')).body);
    const web = status.certificates.find((c: { name: string }) => c.name === 'web');
    assert.equal(web.status.revision, 1);

    // The CLI, as a person would run it against the server's HTTP port.
    const cli = await run(process.execPath, ['dist/src/cli.js', 'renew', 'web', '--http', server.httpAddress!]);
    assert.match(cli.stdout, /^renewal of default\/web requested at \S+\n$/);

    const r2 = await tls.response(15_000);
    tls.ack(r2);
    t.diagnostic(`renewal served ${Date.now() - t0} ms after the start`);
    assert.notEqual(r2.version_info, r1.version_info);
    assert.notEqual(leafOf(r2).serialNumber, leafOf(r1).serialNumber);
    assertVerifies(rootPem, pemOf(r2.secrets[0]?.tls_certificate?.certificate_chain), 'renewed leaf');
    await ca.nothing(100); // the CA did not change
    const logs = server.logText();
    assert.ok(!logs.includes('PRIVATE KEY'), 'no key material in the server log');
  });

  test('the renew controls refuse an unknown certificate and answer the CLI with an error', async () => {
    const missing = await http('POST', server.httpAddress!, '/issuance/renew/default/nope');
    assert.equal(missing.status, 404);
    await assert.rejects(
      run(process.execPath, ['dist/src/cli.js', 'renew', 'nope', '--http', server.httpAddress!]),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr ?? '', /no Certificate "nope"/);
        return true;
      },
    );
    const wrongMethod = await http('GET', server.httpAddress!, '/issuance/renew/default/web');
    assert.equal(wrongMethod.status, 405);
  });
});

describe('ACME issuance in the real server: HTTP-01 on the server HTTP port', { skip: skipUnlessTools(NAMED, PEBBLE) }, () => {
  let bind: BindServer;
  let pebble: PebbleServer;
  let server: TestServer;
  let envoy: FakeEnvoy;

  before(async () => {
    bind = await startBind({ zone: 'example.test' });
    const httpPort = await freePort();
    pebble = await startPebble({ dnsServer: `127.0.0.1:${bind.port}`, httpPort });
    const dir = tempDir('e2e-acme-');
    writeFileSync(join(dir, 'pebble-ca.pem'), pebble.caPem);
    server = await startTestServer({
      dataDir: dir,
      http: { address: `127.0.0.1:${httpPort}` },
      issuance: {
        backoff: { initial: '200ms', max: '1s' },
        acme: { pollInterval: '50ms', maxPollInterval: '200ms' },
        resources: [
          {
            apiVersion: V,
            kind: 'ClusterIssuer',
            metadata: { name: 'pebble' },
            spec: {
              acme: {
                server: pebble.directoryUrl,
                caBundleFile: join(dir, 'pebble-ca.pem'),
                privateKeySecretRef: { name: 'pebble-account' },
                solvers: [{ http01: {} }],
              },
            },
          },
          {
            apiVersion: V,
            kind: 'Certificate',
            metadata: { name: 'gateway', namespace: 'edge' },
            spec: {
              secretName: 'gateway-tls',
              dnsNames: ['gw.example.test'],
              issuerRef: { name: 'pebble', kind: 'ClusterIssuer' },
              privateKey: { algorithm: 'ECDSA' },
            },
          },
        ],
      },
    });
    envoy = new FakeEnvoy(server.grpcAddress!);
  });
  after(async () => {
    envoy?.close();
    await server?.stop();
    await pebble?.stop();
    await bind?.stop();
  });

  test('Pebble validates through the server HTTP port and the certificate reaches Envoy; a renewal is pushed', async () => {
    const s = envoy.sotw();
    s.request({ names: ['gateway-tls'] });
    const r1 = await s.response(20_000);
    s.ack(r1);
    assert.equal(leafOf(r1).subjectAltName, 'DNS:gw.example.test');
    assertVerifies(await pebble.rootPem(), pemOf(r1.secrets[0]?.tls_certificate?.certificate_chain), 'Pebble chain as served');
    const renew = await http('POST', server.httpAddress!, '/issuance/renew/edge/gateway');
    assert.equal(renew.status, 202, renew.body);
    const r2 = await s.response(20_000);
    assert.notEqual(leafOf(r2).serialNumber, leafOf(r1).serialNumber);
  });
});
