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
      if (r.secrets.length !== 1 || secret?.name !== name) throw new Error(`expected only ${name}, got ${r.secrets.map((x) => x.name).join(',')}`);
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
export function writePair(dir: string, name: string, pair: Pair, ca?: Pair): { name: string; tlsCertificate: { certificateChainFile: string; privateKeyFile: string } } {
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
