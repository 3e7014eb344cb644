// Starts the real server (all of main.ts's wiring) on loopback port 0 for a test.
import { Writable } from 'node:stream';
import { parseConfig, type ServerConfig } from '../../src/config/server-config.js';
import { startServer, type RunningServer, type StartOptions } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import type { SecretMaterial } from '../../src/store/secret-material.js';
import { duplicateKeys } from './json-duplicate-keys.js';
import { makeCa, makeLeaf, type Pair } from './openssl-certs.js';

export interface TestServer extends RunningServer {
  /** Log lines the server wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Raw log text, for "never logs a key" checks. */
  logText(): string;
  /** Lines of the private-key audit trail, parsed. */
  audit: Array<Record<string, unknown>>;
  put(name: string, material: SecretMaterial): ReturnType<RunningServer['store']['put']>;
}

export async function startTestServer(doc: Record<string, unknown> = {}, opts: StartOptions = {}): Promise<TestServer> {
  const logs: Array<Record<string, unknown>> = [];
  const repeated: string[] = [];
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const s = chunk.toString();
      text += s;
      for (const line of s.split('\n')) {
        if (!line.trim()) continue;
        const dups = duplicateKeys(line);
        if (dups.length > 0) repeated.push(`log line repeats ${dups.join(', ')}: ${line}`);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  const config: ServerConfig = parseConfig(
    {
      grpc: { tcp: { address: '127.0.0.1:0' } },
      http: { address: '127.0.0.1:0' },
      authorization: { rules: [{ identities: ['loopback', 'unix'], names: ['*'] }] },
      drainSeconds: 2,
      ...doc,
    },
    process.cwd(),
    // Not the test runner's environment: a CI job that runs in a pod would otherwise turn
    // loopback trust off for every test (a test sets trustLoopback to say otherwise).
    {},
  );
  const logger = createLogger({ level: 'debug', destination: sink });
  const audit: Array<Record<string, unknown>> = [];
  const auditSink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) audit.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const server = await startServer(config, { logger, defaultMetrics: false, fileSettleMs: 30, auditDestination: auditSink, ...opts });
  return {
    ...server,
    logs,
    audit,
    logText: () => text,
    async stop() {
      await server.stop();
      // Every test that stops its server also checks that no log line repeated a key. It
      // fails the test file (exit code) rather than throwing here, so that the caller's
      // clean-up after stop() (clusters, other servers) still runs.
      if (repeated.length > 0) {
        process.stderr.write(`FAIL: ${repeated.join('\n')}\n`);
        process.exitCode = 1;
      }
    },
    put: (name, material) => server.store.put(name, material, { source: 'test', ref: name }),
  };
}

/** A CA and two leaves, made once per test file (openssl is quick but not free). */
export interface Fixtures {
  ca: Pair;
  web1: Pair;
  web2: Pair;
  other: Pair;
}

export function makeFixtures(): Fixtures {
  const ca = makeCa();
  return {
    ca,
    web1: makeLeaf(ca, ['web.example.com']),
    web2: makeLeaf(ca, ['web.example.com', 'www.example.com']),
    other: makeLeaf(ca, ['other.example.com']),
  };
}

export function tls(pair: Pair, ca?: Pair): SecretMaterial {
  return { kind: 'tls_certificate', certificateChain: pair.certPem + (ca?.certPem ?? ''), privateKey: pair.keyPem };
}

export function caBundle(...cas: Pair[]): SecretMaterial {
  return { kind: 'validation_context', trustedCa: cas.map((c) => c.certPem).join('') };
}

/** Polls until `fn` is true (server-side state), failing after `timeoutMs`. */
export async function until(fn: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!fn()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sum of a metric's values (all label sets), read the way a scrape would. */
export async function metricTotal(metric: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await metric.get()).values.reduce((a, v) => a + v.value, 0);
}

/** Polls an async condition until it holds. */
export async function eventually(fn: () => Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await fn())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A leaf whose validity ended yesterday. */
export function makeLeafExpired(fx: Fixtures): Pair {
  return makeLeaf(fx.ca, ['expired.example.com'], { startDaysAgo: 10, days: 9 });
}
