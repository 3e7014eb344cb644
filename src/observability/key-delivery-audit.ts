import { pino, type Logger } from 'pino';
import { TurnBatchedDestination } from './turn-batched-destination.js';

/** What the audit needs of a stored secret (a StoredSecret is one). */
export interface DeliveredSecret {
  readonly name: string;
  readonly kind: string;
  readonly version: string;
}

/**
 * The audit trail of private keys: one line the first time each version of a private key
 * is delivered to each identity (identity, secret, version, time). A logger of its own,
 * at a fixed level, never sampled or rate-limited and independent of `logLevel`, so that
 * "who has received this key" can be answered from the log alone. CA-only material
 * (validation contexts) is public and not recorded.
 *
 * "First" is remembered for the last `maxRemembered` (identity, name, version) triples: a
 * reconnect, a second stream or a fetch of the same version adds no line; beyond that
 * bound a repeat may be written again (a duplicate, never a gap).
 */
export class KeyDeliveryAudit {
  private readonly seen = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly maxRemembered = 200_000,
  ) {}

  delivered(identity: string, secrets: readonly DeliveredSecret[]): void {
    for (const s of secrets) {
      if (s.kind !== 'tls_certificate') continue;
      const key = `${identity}\n${s.name}\n${s.version}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      if (this.seen.size > this.maxRemembered) {
        const oldest = this.seen.values().next().value;
        if (oldest !== undefined) this.seen.delete(oldest);
      }
      this.log.info({ identity, secret: s.name, version: s.version }, 'private key delivered');
    }
  }
}

let lastMs = -1;
let lastTime = '';
/** pino's isoTime, formatted once per millisecond: a connect storm writes thousands of audit lines a second. */
function isoTimeOncePerMs(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * The audit logger: JSON lines marked `"log":"audit"`, to stdout unless told otherwise.
 * The lines of one turn are written together, before that turn's responses leave.
 */
export function createAuditLogger(destination?: NodeJS.WritableStream): Logger {
  const options = {
    level: 'info',
    base: { service: 'envoy-sds', log: 'audit' },
    timestamp: isoTimeOncePerMs,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const batched = destination ? new TurnBatchedDestination(destination) : TurnBatchedDestination.toFd(1);
  return pino(options, batched);
}
