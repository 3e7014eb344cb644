// `envoy-sds inspect NAME` and the causes behind a declared secret that is not served:
// the chain with usages and days left, verification against NAME-cacert, the last
// rejected update with its code (also in /readyz and /status), and who holds it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { makeCa } from '../support/openssl-certs.js';
import { eventually, makeFixtures, makeLeafExpired, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

const CLI = resolve('dist/src/cli.js');

let server: TestServer;
let fx: Fixtures;
let envoy: FakeEnvoy;

async function inspect(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, 'inspect', '--http', server.httpAddress!, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

before(async () => {
  fx = makeFixtures();
  const dir = mkdtempSync(join(tmpdir(), 'sds-inspect-'));
  writeFileSync(join(dir, 'tls.crt'), fx.web1.certPem);
  writeFileSync(join(dir, 'tls.key'), fx.web1.keyPem);
  writeFileSync(join(dir, 'ca.crt'), fx.ca.certPem);
  writeFileSync(join(dir, 'other.key'), fx.other.keyPem);
  server = await startTestServer({
    secrets: [
      { name: 'web', tlsCertificate: { certificateChainFile: join(dir, 'tls.crt'), privateKeyFile: join(dir, 'tls.key') } },
      { name: 'web-cacert', validationContext: { trustedCaFile: join(dir, 'ca.crt') } },
      // The key does not match the certificate: rejected at the store's door.
      { name: 'broken', tlsCertificate: { certificateChainFile: join(dir, 'tls.crt'), privateKeyFile: join(dir, 'other.key') } },
    ],
  });
  envoy = new FakeEnvoy(server.grpcAddress!, { node: { id: 'gw-1', cluster: 'edge' } });
});
after(async () => {
  envoy.close();
  await server.stop();
});

describe('inspect', () => {
  test('the chain with usages and days left, verified against NAME-cacert, and who holds it', async () => {
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    s.ack(await s.response());
    let r = await inspect('web');
    await eventually(
      async () => {
        r = await inspect('web');
        return /gw-1 \(edge\) on \S+: SYNCED/.test(r.stdout);
      },
      5000,
      'gw-1 SYNCED in inspect',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^secret: +web$/m);
    assert.match(r.stdout, /^type: +tls_certificate$/m);
    assert.match(r.stdout, /SANs: +DNS:web\.example\.com/);
    assert.match(r.stdout, /key usages: +\S/);
    assert.match(r.stdout, /not after: .* \(\d+ days left\)/);
    assert.match(r.stdout, /^verifies: yes against web-cacert \(version \w+\): /m);
    assert.match(r.stdout, /^last rejected update: none$/m);
    assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
  });

  test('a chain that does not verify against the served bundle, and an expired certificate, exit 1', async () => {
    const foreign = makeCa('Foreign CA');
    server.put('mixed', tls(fx.web1));
    server.put('mixed-cacert', { kind: 'validation_context', trustedCa: foreign.certPem });
    const mixed = await inspect('mixed');
    assert.equal(mixed.code, 1);
    assert.match(mixed.stdout, /^verifies: NO against mixed-cacert .*not signed by any CA of the bundle/m);

    server.put('old', tls(makeLeafExpired(fx)));
    const old = await inspect('old', '--expiring-days', '10');
    assert.equal(old.code, 1);
    assert.match(old.stdout, /certificate \[0\]: +EXPIRED/);
    assert.match(old.stdout, /expired \d+ days ago/);
  });

  test('a declared secret that was rejected: the code in inspect, /readyz and /status', async () => {
    await eventually(async () => (await inspect('broken')).stderr.includes('KEY_MISMATCH'), 5000, 'rejection recorded');
    const r = await inspect('broken');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^envoy-sds inspect broken: no secret "broken" is served$/m);
    assert.match(r.stderr, /^last rejected update: KEY_MISMATCH at \S+ from file:\S+: /m);

    const ready = await fetch(`http://${server.httpAddress}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /secret broken not loaded: update rejected \(KEY_MISMATCH\) at /);
    const status = (await (await fetch(`http://${server.httpAddress}/status`)).json()) as {
      notLoaded: Array<{ name: string; lastRejection: { code: string } | null }>;
    };
    assert.deepEqual(
      status.notLoaded.map((n) => [n.name, n.lastRejection?.code]),
      [['broken', 'KEY_MISMATCH']],
    );
  });

  test('a name the server does not serve: exit 3, one line', async () => {
    const r = await inspect('nothing-here');
    assert.equal(r.code, 3);
    assert.equal(r.stderr, 'envoy-sds inspect nothing-here: no secret "nothing-here" is served\n');
  });
});
