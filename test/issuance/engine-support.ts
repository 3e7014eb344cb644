// Shared pieces of the issuance tests: an engine on a temporary data directory with its
// logs captured, waiting on a certificate's status, reading what it persisted, an HTTP
// server that serves an engine's routes (the HTTP-01 port Pebble calls), and openssl.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { duplicateKeys } from '../support/json-duplicate-keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { IssuanceEngine, type IssuanceEngineOptions } from '../../src/issuance/engine.js';
import type { CertificateStatus } from '../../src/issuance/certificate-status.js';
import { parseIssuanceConfig } from '../../src/issuance/issuance-config.js';
import { API_VERSION } from '../../src/issuance/resources.js';

export const V = API_VERSION;

export interface TestEngine {
  engine: IssuanceEngine;
  dataDir: string;
  logText(): string;
  stop(): Promise<void>;
}

const created: string[] = [];
// Data directories hold private keys: removed when the test process ends (engines are
// restarted on the same directory within a test, so not earlier).
process.once('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'issuance-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Starts an engine for `resources` (k8s-style objects) on `dataDir` (a new temp dir by default). */
export async function startEngine(
  resources: unknown[],
  opts: { dataDir?: string; settings?: Record<string, unknown> } & Partial<Omit<IssuanceEngineOptions, 'config' | 'dataDir'>> = {},
): Promise<TestEngine> {
  const dataDir = opts.dataDir ?? tempDir();
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const config = parseIssuanceConfig(
    {
      resources,
      backoff: { initial: '200ms', max: '1s' },
      acme: { pollInterval: '50ms', maxPollInterval: '200ms', timeout: '30s' },
      ...(opts.settings ?? {}),
    },
    { baseDir: dataDir },
  );
  const { settings: _s, dataDir: _d, ...rest } = opts;
  void _s;
  void _d;
  const engine = new IssuanceEngine({ config, dataDir, logger: createLogger({ level: 'debug', destination: sink }), ...rest });
  engine.fileSecrets();
  await engine.start();
  return {
    engine,
    dataDir,
    logText: () => text,
    async stop() {
      await engine.stop();
      // The engine's log lines (ACME account, orders) never repeat a key.
      const repeated = text.split('\n').filter((l) => l.trim() && duplicateKeys(l).length > 0);
      if (repeated.length > 0) {
        process.stderr.write(`FAIL: log lines repeat a key:\n${repeated.join('\n')}\n`);
        process.exitCode = 1;
      }
    },
  };
}

export function statusOf(engine: IssuanceEngine, id: string): CertificateStatus | undefined {
  return engine.status().find((c) => `${c.namespace}/${c.name}` === id)?.status;
}

export function condition(status: CertificateStatus | undefined, type: 'Ready' | 'Issuing') {
  return status?.conditions.find((c) => c.type === type);
}

/** Waits (polling, 10 ms) until the certificate's status satisfies `pred`. */
export async function waitForStatus(
  engine: IssuanceEngine,
  id: string,
  pred: (s: CertificateStatus) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<CertificateStatus> {
  const start = Date.now();
  for (;;) {
    const s = statusOf(engine, id);
    if (s && pred(s)) return s;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${id}: ${what}; status now ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const isReady = (s: CertificateStatus) => condition(s, 'Ready')?.status === 'True' && condition(s, 'Issuing') === undefined;
export const revisionAtLeast = (n: number) => (s: CertificateStatus) => isReady(s) && (s.revision ?? 0) >= n;

export function secretDir(dataDir: string, namespace: string, secretName: string): string {
  return join(dataDir, 'issuance', 'secrets', namespace, secretName);
}

export function certificateDir(dataDir: string, namespace: string, name: string): string {
  return join(dataDir, 'issuance', 'certificates', namespace, name);
}

export interface SecretFilesRead {
  crt: string;
  key: string;
  ca: string | undefined;
  keyMode: number;
  leaf: X509Certificate;
}

export function readSecretFiles(dataDir: string, namespace: string, secretName: string): SecretFilesRead {
  const dir = secretDir(dataDir, namespace, secretName);
  const crt = readFileSync(join(dir, 'tls.crt'), 'utf8');
  let ca: string | undefined;
  try {
    ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  } catch {
    ca = undefined;
  }
  return {
    crt,
    key: readFileSync(join(dir, 'tls.key'), 'utf8'),
    ca,
    keyMode: statSync(join(dir, 'tls.key')).mode & 0o777,
    leaf: new X509Certificate(crt),
  };
}

export function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** `openssl verify -CAfile ca [-untrusted chain] leaf`, asserting OK. */
export function assertVerifies(caPem: string, chainPem: string, what: string): void {
  const dir = tempDir('verify-');
  try {
    const certs = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
    writeFileSync(join(dir, 'ca.pem'), caPem);
    writeFileSync(join(dir, 'leaf.pem'), certs[0] ?? '');
    const args = ['verify', '-CAfile', join(dir, 'ca.pem')];
    if (certs.length > 1) {
      writeFileSync(join(dir, 'untrusted.pem'), certs.slice(1).join(''));
      args.push('-untrusted', join(dir, 'untrusted.pem'));
    }
    args.push(join(dir, 'leaf.pem'));
    const out = openssl(args);
    assert.match(out, /: OK\s*$/, `${what}: openssl verify said ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `openssl x509 -text` of the first certificate. */
export function x509Text(pem: string): string {
  return openssl(['x509', '-noout', '-text'], pem);
}

/** An HTTP server on `port` (0: any) that hands every request to the current engine's routes. */
export async function routeServer(
  port: number,
  current: () => IssuanceEngine | undefined,
): Promise<{ port: number; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.headers.host ?? ''}${req.url ?? ''}`);
    const engine = current();
    const path = (req.url ?? '/').split('?')[0]!;
    for (const [prefix, handler] of engine?.httpRoutes() ?? []) {
      if (path.startsWith(prefix)) return void Promise.resolve(handler(req, res));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return {
    port: address.port,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function selfSignedCaChain(opts: { leafExtra?: Record<string, unknown>[]; caNamespace?: string } = {}): unknown[] {
  const ns = opts.caNamespace ?? 'cert-manager';
  return [
    { apiVersion: V, kind: 'ClusterIssuer', metadata: { name: 'selfsigned' }, spec: { selfSigned: {} } },
    {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'root-ca', namespace: ns },
      spec: {
        isCA: true,
        commonName: 'Test Root CA',
        secretName: 'root-ca',
        privateKey: { algorithm: 'ECDSA', size: 256 },
        issuerRef: { name: 'selfsigned', kind: 'ClusterIssuer' },
      },
    },
    { apiVersion: V, kind: 'ClusterIssuer', metadata: { name: 'ca' }, spec: { ca: { secretName: 'root-ca' } } },
    ...(opts.leafExtra ?? []),
  ];
}
