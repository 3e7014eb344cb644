// Start-up as an operator meets it: the real CLI with a config whose port is taken, whose
// TLS file is missing, whose level or port is wrong. Each ends with exit code 2, one line
// on stderr naming the config field, no stack trace, and nothing left running or bound.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';

const CLI = resolve('dist/src/cli.js');
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sds-edges-start-'));
  const ca = makeCa();
  const leaf = makeLeaf(ca, ['web.example.com']);
  writeFileSync(join(dir, 'web.crt'), leaf.certPem);
  writeFileSync(join(dir, 'web.key'), leaf.keyPem);
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Ended {
  code: number | null;
  stderr: string;
  stdout: string;
}

/** Runs `envoy-sds serve --config` and waits for it to end (a process that stays up fails the test). */
function serve(config: Record<string, unknown>, name: string): Promise<Ended> {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify(config));
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', path], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KUBERNETES_SERVICE_HOST: '' },
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d));
  proc.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolveEnd, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the server kept running after a failed start; stderr: ${stderr.slice(0, 2000)}`));
    }, 20_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolveEnd({ code, stderr, stdout });
    });
  });
}

function listen(port = 0): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolveServer(s));
  });
}
const portOf = (s: Server) => (s.address() as { port: number }).port;
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

/** A port free right now. */
async function freePort(): Promise<number> {
  const s = await listen();
  const p = portOf(s);
  await close(s);
  return p;
}

function assertOneLine(ended: Ended, field: RegExp): void {
  assert.equal(ended.code, 2, `exit code; stderr: ${ended.stderr}`);
  const lines = ended.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${ended.stderr}`);
  assert.match(lines[0]!, field);
  assert.doesNotMatch(ended.stderr, /\n\s+at |Error:/, 'no stack trace');
}

const fileSecret = () => ({
  name: 'web',
  tlsCertificate: { certificateChainFile: join(dir, 'web.crt'), privateKeyFile: join(dir, 'web.key') },
});

describe('start-up failures end the process with one line naming the field', () => {
  test('the gRPC port in use: exit 2, grpc.tcp.address named, no component started, the HTTP port released', async () => {
    const taken = await listen();
    const httpPort = await freePort();
    try {
      const ended = await serve(
        {
          dataDir: join(dir, 'data1'),
          grpc: { tcp: { address: `127.0.0.1:${portOf(taken)}` } },
          http: { address: `127.0.0.1:${httpPort}` },
          secrets: [fileSecret()],
        },
        'grpc-taken',
      );
      assertOneLine(ended, /grpc\.tcp\.address.*in use/);
      assert.doesNotMatch(ended.stdout, /secret added/, 'the file source did not start');
      await close(await listen(httpPort)); // nothing holds the HTTP port
    } finally {
      await close(taken);
    }
  });

  test('with a kubernetes: section and the gRPC port in use, the Kubernetes watches never start', async () => {
    const taken = await listen();
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'not-a-real-token' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    try {
      const ended = await serve(
        {
          dataDir: join(dir, 'data7'),
          grpc: { tcp: { address: `127.0.0.1:${portOf(taken)}` } },
          http: { address: '127.0.0.1:0' },
          kubernetes: { kubeconfig },
        },
        'k8s-taken',
      );
      assertOneLine(ended, /grpc\.tcp\.address.*in use/);
      assert.doesNotMatch(ended.stdout, /watching Kubernetes/);
    } finally {
      await close(taken);
    }
  });

  test('the HTTP port in use: exit 2, http.address named, the gRPC port released, no component started', async () => {
    const taken = await listen();
    const grpcPort = await freePort();
    try {
      const ended = await serve(
        {
          dataDir: join(dir, 'data2'),
          grpc: { tcp: { address: `127.0.0.1:${grpcPort}` } },
          http: { address: `127.0.0.1:${portOf(taken)}` },
          secrets: [fileSecret()],
        },
        'http-taken',
      );
      assertOneLine(ended, /http\.address.*in use/);
      assert.doesNotMatch(ended.stdout, /secret added/);
      await close(await listen(grpcPort));
    } finally {
      await close(taken);
    }
  });

  test('a missing TLS file: exit 2, grpc.tcp.tls.certFile named', async () => {
    const ended = await serve(
      {
        dataDir: join(dir, 'data3'),
        grpc: { tcp: { address: '127.0.0.1:0', tls: { certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'web.key') } } },
        http: { address: '127.0.0.1:0' },
      },
      'missing-tls',
    );
    assertOneLine(ended, /grpc\.tcp\.tls\.certFile.*missing\.crt/);
  });

  test("a TLS key that is not PEM, or not the certificate's: exit 2, grpc.tcp.tls.keyFile named, no key material", async () => {
    writeFileSync(join(dir, 'garbage.key'), 'not a key\n');
    const other = makeLeaf(makeCa('other'), ['other.example.com']);
    writeFileSync(join(dir, 'other.key'), other.keyPem);
    for (const [keyFile, why] of [
      ['garbage.key', /not a PEM private key/],
      ['other.key', /not the key of the certificate/],
    ] as const) {
      const ended = await serve(
        {
          dataDir: join(dir, 'data9'),
          grpc: { tcp: { address: '127.0.0.1:0', tls: { certFile: join(dir, 'web.crt'), keyFile: join(dir, keyFile) } } },
          http: null,
        },
        `bad-key-${keyFile}`,
      );
      assertOneLine(ended, /grpc\.tcp\.tls\.keyFile/);
      assert.match(ended.stderr, why);
      assert.doesNotMatch(ended.stderr + ended.stdout, /PRIVATE KEY/);
    }
  });

  test('logLevel: verbose: exit 2, logLevel named', async () => {
    assertOneLine(
      await serve(
        { dataDir: join(dir, 'data4'), grpc: { tcp: { address: '127.0.0.1:0' } }, http: { address: '127.0.0.1:0' }, logLevel: 'verbose' },
        'level',
      ),
      /logLevel.*verbose/,
    );
  });

  test('port 99999: exit 2, grpc.tcp.address named', async () => {
    assertOneLine(
      await serve({ dataDir: join(dir, 'data5'), grpc: { tcp: { address: '127.0.0.1:99999' } }, http: { address: '127.0.0.1:0' } }, 'port'),
      /grpc\.tcp\.address.*99999/,
    );
  });

  test('a socket directory that cannot be created (its parent is a file): exit 2, grpc.unix.path named (not the TCP address)', async () => {
    assertOneLine(
      await serve(
        {
          dataDir: join(dir, 'data8'),
          grpc: { tcp: { address: '127.0.0.1:0' }, unix: { path: join(dir, 'web.crt', 'sub', 'sds.sock') } },
          http: null,
        },
        'sockdir',
      ),
      /grpc\.unix\.path.*not a directory/,
    );
  });

  test('a kubeconfig whose context resolves to no credentials: exit 2, kubernetes.kubeconfig named, never anonymous', async () => {
    const kubeconfig = join(dir, 'kubeconfig-anonymous');
    writeFileSync(
      kubeconfig,
      stringify({
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'u', user: {} }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    const ended = await serve(
      { dataDir: join(dir, 'data-anon'), grpc: { tcp: { address: '127.0.0.1:0' } }, http: null, kubernetes: { kubeconfig } },
      'anonymous',
    );
    assertOneLine(ended, /kubernetes\.kubeconfig: .*resolves to no credentials.*refusing to connect as anonymous/);
  });

  test('a world-writable socket mode: exit 2, grpc.unix.mode named', async () => {
    assertOneLine(
      await serve({ dataDir: join(dir, 'data6'), grpc: { unix: { path: join(dir, 's.sock'), mode: '0666' } }, http: null }, 'mode'),
      /grpc\.unix\.mode.*world-writable/,
    );
  });
});

describe('bind errors as config fields', () => {
  test("a plain Node listen error (code EADDRINUSE) and grpc-js's message-only error map alike", async () => {
    const { bindError } = await import('../../src/config/startup-checks.js');
    const node = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:18000'), { code: 'EADDRINUSE' });
    const grpcJs = new Error(
      'No address added out of total 1 resolved errors: [listen EADDRINUSE: address already in use 127.0.0.1:18000]',
    );
    for (const err of [node, grpcJs]) {
      const e = bindError(err, 'grpc.tcp.address', '127.0.0.1:18000');
      assert.equal(e.field, 'grpc.tcp.address');
      assert.match(e.message, /^grpc\.tcp\.address: 127\.0\.0\.1:18000: the address is already in use.*\(EADDRINUSE\)$/);
    }
    const denied = bindError(
      Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES' }),
      'http.address',
      '0.0.0.0:80',
    );
    assert.match(denied.message, /http\.address: 0\.0\.0\.0:80: permission denied/);
  });
});
