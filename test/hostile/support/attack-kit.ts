// What every hostile test measures and asserts: the server is alive, a well-behaved
// client is still served within a deadline, and memory and log growth stay bounded.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { FakeEnvoy, pemOf } from '../../support/fake-envoy.js';
import type { Pair } from '../../support/openssl-certs.js';
import type { SpawnedServer } from './spawned-server.js';

export const MB = 1024 * 1024;

/**
 * Opens a fresh stream for `name` (a well-behaved Envoy on its own connection) until it
 * receives the secret, polling up to `deadlineMs`. Returns how long the successful
 * attempt took. Checks what came is that secret, with a certificate chain.
 */
export async function servedWithin(target: string, name: string, deadlineMs: number, expectChain?: string): Promise<number> {
  const until = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < until) {
    const envoy = new FakeEnvoy(target, { node: { id: 'well-behaved', cluster: 'gateway' } });
    const started = performance.now();
    try {
      const s = envoy.sotw();
      s.request({ names: [name] });
      const r = await s.response(Math.max(100, until - Date.now()));
      const secret = r.secrets[0];
      if (r.secrets.length !== 1 || secret?.name !== name)
        throw new Error(`expected only ${name}, got ${r.secrets.map((x) => x.name).join(',')}`);
      const chain = pemOf(secret.tls_certificate?.certificate_chain ?? secret.validation_context?.trusted_ca);
      if (!chain.includes('BEGIN CERTIFICATE')) throw new Error('no certificate in the response');
      if (expectChain !== undefined && chain !== expectChain) throw new Error('served content is not the expected certificate');
      s.ack(r);
      return performance.now() - started;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      envoy.close();
    }
  }
  throw new Error(`a well-behaved client was not served "${name}" within ${deadlineMs} ms: ${(last as Error)?.message}`);
}

/** Samples the server's RSS while an attack runs. */
export class RssWatch {
  readonly baseline: number;
  peak: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly server: SpawnedServer) {
    this.baseline = server.rss();
    this.peak = this.baseline;
    this.timer = setInterval(() => this.sample(), 25);
  }

  sample(): void {
    if (!this.server.alive()) return;
    try {
      this.peak = Math.max(this.peak, this.server.rss());
    } catch {
      // exited between the check and the read
    }
  }

  /** Stops sampling; growth = peak - baseline. */
  stop(): { baselineMb: number; peakMb: number; growthMb: number } {
    clearInterval(this.timer);
    this.sample();
    return { baselineMb: this.baseline / MB, peakMb: this.peak / MB, growthMb: (this.peak - this.baseline) / MB };
  }

  /**
   * Growth that stays: RSS after `quietMs` without traffic, minus the baseline. The
   * peak also counts garbage from decoding the attack's requests, which the collector
   * returns; what stays is what the server kept.
   */
  async retainedMb(quietMs = 2000): Promise<number> {
    await new Promise((r) => setTimeout(r, quietMs));
    return this.server.alive() ? (this.server.rss() - this.baseline) / MB : Number.NaN;
  }
}

export interface AttackFigures {
  attack: string;
  [figure: string]: string | number | boolean;
}

/** Prints the figures (test diagnostics) and appends them to $HOSTILE_REPORT, for the before/after table. */
export function report(t: TestContext, figures: AttackFigures): void {
  const rounded = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 10) / 10 : v]));
  t.diagnostic(JSON.stringify(rounded));
  const file = process.env['HOSTILE_REPORT'];
  if (file) appendFileSync(file, `${JSON.stringify(rounded)}\n`);
}

/** Writes a certificate pair under dir/name/ and returns the config entry for it. */
export function writePair(
  dir: string,
  name: string,
  pair: Pair,
  ca?: Pair,
): { name: string; tlsCertificate: { certificateChainFile: string; privateKeyFile: string } } {
  mkdirSync(join(dir, name), { recursive: true });
  const cert = join(dir, name, 'tls.crt');
  const key = join(dir, name, 'tls.key');
  writeFileSync(cert, pair.certPem + (ca?.certPem ?? ''));
  writeFileSync(key, pair.keyPem);
  return { name, tlsCertificate: { certificateChainFile: cert, privateKeyFile: key } };
}

/** Polls `fn` until true or the deadline; the error names what was awaited. */
export async function waitFor(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Policy used by the client attacks: the attacker comes over the Unix socket and may read only `web`; loopback reads all. */
export const ATTACKER_POLICY = {
  rules: [
    { identities: ['unix'], names: ['web'] },
    { identities: ['loopback'], names: ['*'] },
  ],
};

/** A sample's value from a Prometheus text body (`name{labels} value`), summed over matching lines. */
export function metricValue(body: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of body.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Waits until the server's log has been quiet for `quietMs` (pino writes asynchronously), up to `timeoutMs`. */
export async function logSettled(server: SpawnedServer, quietMs = 500, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let size = server.logSize;
  let since = Date.now();
  while (Date.now() < until && server.alive()) {
    await new Promise((r) => setTimeout(r, 50));
    if (server.logSize !== size) {
      size = server.logSize;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
}

/** Like waitFor, but reports whether the condition held instead of throwing (to measure old builds too). */
export async function reached(fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  try {
    await waitFor(fn, timeoutMs, 'condition');
    return true;
  } catch {
    return false;
  }
}
