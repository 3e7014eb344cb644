// Interop with independent gRPC implementations: grpc-go (the benchmark's load client,
// bench/go/load, which plays a fleet of Envoys) and Python grpcio (gRPC C-core, the
// library inside Envoy's google_grpc client). grpc-js is the client of every other test.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test, type TestContext } from 'node:test';
import { status } from '@grpc/grpc-js';
import { makeCa, makeClientCert, makeLeaf, type Pair } from '../support/openssl-certs.js';
import { decodeResponse, discoveryRequest } from '../support/raw-grpc.js';
import { makeFixtures, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PY_CLIENT = join(ROOT, 'test', 'transport', 'interop', 'grpcio_client.py');

/** Runs a client without blocking the event loop: the server under test is in this process. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A missing dependency skips the test locally and fails it under CI=true. */
function unavailable(t: TestContext, why: string): void {
  if (process.env['CI'] === 'true') assert.fail(why);
  t.skip(why);
}

let fx: Fixtures;
let dir: string;
let serverCa: Pair;
before(() => {
  fx = makeFixtures();
  dir = mkdtempSync(join(tmpdir(), 'sds-interop-'));
  serverCa = makeCa('Interop server CA');
  const cert = makeLeaf(serverCa, ['localhost']);
  writeFileSync(join(dir, 'server.crt'), cert.certPem);
  writeFileSync(join(dir, 'server.key'), cert.keyPem);
  writeFileSync(join(dir, 'ca.crt'), serverCa.certPem);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('grpc-go (bench/go/load)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    for (let i = 0; i < 20; i++) server.put(`bench-${i}`, tls(fx.web1));
  });
  after(() => server.stop());

  test('20 StreamSecrets streams on 4 connections all get their secret', async (t) => {
    const build = spawnSync(join(ROOT, 'bench', 'go', 'build.sh'), { encoding: 'utf8', timeout: 300_000 });
    const load = join(ROOT, 'bench', 'bin', 'sds-load');
    if (build.status !== 0 || !existsSync(load)) {
      unavailable(t, `bench/go/build.sh failed: ${(build.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
      return;
    }
    // storm: every stream's first response is checked (one Secret resource, its name,
    // chain and key); names bench-(i mod 20) would fail, so distinct names up to 20.
    const out = await run(
      load,
      [
        '-addr',
        server.grpcAddress!,
        '-streams',
        '20',
        '-conns',
        '4',
        '-names',
        'distinct',
        '-scenario',
        'storm',
        '-json',
        '-timeout',
        '60s',
      ],
      120_000,
    );
    assert.equal(out.status, 0, `sds-load failed: ${out.stdout} ${out.stderr}`);
    const result = JSON.parse(out.stdout) as { ok: boolean; badResponses: number };
    assert.equal(result.ok, true);
    assert.equal(result.badResponses, 0);
  });
});

describe('Python grpcio (gRPC C-core)', () => {
  function python(t: TestContext): boolean {
    const probe = spawnSync('python3', ['-c', 'import grpc'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      unavailable(t, `python3 with grpcio is needed (.ci/run installs it): ${probe.stderr.trim().split('\n').pop()}`);
      return false;
    }
    return true;
  }

  async function runClient(
    address: string,
    mtlsFiles: string[] = [],
  ): Promise<{ response: string; fetchStatus: string; fetchDetails: string }> {
    const out = await run(
      'python3',
      [PY_CLIENT, address, discoveryRequest(['web']).toString('hex'), discoveryRequest(['no-such']).toString('hex'), ...mtlsFiles],
      60_000,
    );
    assert.equal(out.status, 0, `grpcio client failed: ${out.stdout} ${out.stderr}`);
    return JSON.parse(out.stdout) as { response: string; fetchStatus: string; fetchDetails: string };
  }

  test('over h2c: StreamSecrets answers; a gzip-compressed FetchSecrets gets its status', async (t) => {
    if (!python(t)) return;
    const server = await startTestServer();
    try {
      server.put('web', tls(fx.web1));
      const out = await runClient(server.grpcAddress!);
      const r = decodeResponse(Buffer.from(out.response, 'hex'));
      assert.equal(r.secrets[0]!.name, 'web');
      assert.equal(r.version_info, server.store.get('web')!.version);
      assert.equal(out.fetchStatus, status[status.NOT_FOUND]);
      assert.match(out.fetchDetails, /no-such/);
    } finally {
      await server.stop();
    }
  });

  test('over mTLS: the client certificate is the identity', async (t) => {
    if (!python(t)) return;
    const clientCa = makeCa('Interop client CA');
    const client = makeClientCert(clientCa, 'URI:spiffe://example.org/py');
    writeFileSync(join(dir, 'client-ca.crt'), clientCa.certPem);
    writeFileSync(join(dir, 'client.crt'), client.certPem);
    writeFileSync(join(dir, 'client.key'), client.keyPem);
    const server = await startTestServer({
      grpc: {
        tcp: {
          address: '127.0.0.1:0',
          tls: {
            certFile: join(dir, 'server.crt'),
            keyFile: join(dir, 'server.key'),
            clientCaFile: join(dir, 'client-ca.crt'),
            requireClientCert: true,
          },
        },
      },
      authorization: { rules: [{ identities: ['spiffe://example.org/py'], names: ['web'] }] },
    });
    try {
      server.put('web', tls(fx.web1));
      const out = await runClient(server.grpcAddress!.replace('127.0.0.1', 'localhost'), [
        join(dir, 'ca.crt'),
        join(dir, 'client.crt'),
        join(dir, 'client.key'),
      ]);
      assert.equal(decodeResponse(Buffer.from(out.response, 'hex')).secrets[0]!.name, 'web');
    } finally {
      await server.stop();
    }
  });
});
