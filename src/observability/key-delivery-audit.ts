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
 * "First" is remembered as the last version each identity received of each name, for at
 * most `maxRemembered` (identity, name) pairs: a reconnect, a second stream or a fetch of
 * the same version adds no line; a rotation replaces the pair's version rather than
 * adding one. Beyond the bound the identity remembered longest is forgotten whole, so a
 * repeat may be written again (a duplicate, never a gap). Lookups use the strings the
 * caller and the store already hold: a delivery allocates nothing unless it is written.
 */
export class KeyDeliveryAudit {
  /** identity -> secret name -> the version last written for that pair. */
  private readonly seen = new Map<string, Map<string, string>>();
  private pairs = 0;

  constructor(
    private readonly log: Logger,
    private readonly maxRemembered = 200_000,
  ) {}

  delivered(identity: string, secrets: readonly DeliveredSecret[]): void {
    for (const s of secrets) {
      if (s.kind !== 'tls_certificate') continue;
      let versions = this.seen.get(identity);
      if (versions?.get(s.name) === s.version) continue;
      if (!versions) {
        versions = new Map();
        this.seen.set(identity, versions);
      }
      if (!versions.has(s.name)) this.pairs++;
      versions.set(s.name, s.version);
      this.log.info({ identity, secret: s.name, version: s.version }, 'private key delivered');
      if (this.pairs > this.maxRemembered) this.forgetOldestIdentity(identity);
    }
  }

  /** Drops the identity remembered longest (not the one being written, unless it is alone). */
  private forgetOldestIdentity(current: string): void {
    for (const [identity, versions] of this.seen) {
      if (identity === current && this.seen.size > 1) continue;
      this.pairs -= versions.size;
      this.seen.delete(identity);
      return;
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
