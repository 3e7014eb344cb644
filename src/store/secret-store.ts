import type { Logger } from '../observability/logger.js';
import type { SecretMaterial, SecretOrigin, StoredSecret } from './secret-material.js';
import { DEFAULT_LIMITS, validateMaterial, type ValidationLimits } from './validate-material.js';
import { ValidationCache } from './validation-cache.js';
import { contentVersion } from './version.js';

/** Receives the newest state of a name: a secret, or undefined once it is deleted. */
export type SecretWatcher = (name: string, secret: StoredSecret | undefined) => void;

export type PutResult =
  | { outcome: 'created' | 'updated' | 'unchanged'; secret: StoredSecret }
  | { outcome: 'rejected'; error: Error; code: string; current: StoredSecret | undefined };

export interface SecretStoreOptions {
  logger: Logger;
  limits?: ValidationLimits;
  now?: () => Date;
  /** Told of every put outcome, for metrics. */
  onOutcome?: (origin: SecretOrigin, outcome: PutResult['outcome']) => void;
  /** Told of every rejected update (status and `inspect` show the last one per name). */
  onRejected?: (rejection: Rejection) => void;
}

/** An update refused at the store's door: the code and message, never key material. */
export interface Rejection {
  name: string;
  origin: SecretOrigin;
  code: string;
  message: string;
  at: Date;
}

/**
 * The one meeting point of sources and transport: name -> last good secret.
 *
 * Contracts:
 * - put() validates first; a rejected update leaves the last good version in place.
 * - Watchers are called after the current tick, once per name per tick, with the newest
 *   state only: a burst of updates becomes one notification, and a slow watcher never
 *   holds up put().
 * - A watcher added with watch() is not replayed the current value: the caller reads
 *   get() right after, which avoids a double send.
 */
export class SecretStore {
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly watchers = new Map<string, Set<SecretWatcher>>();
  private readonly pending = new Map<string, StoredSecret | undefined>();
  private flushScheduled = false;
  private readonly validations = new ValidationCache();
  private readonly logger: Logger;
  private readonly limits: ValidationLimits;
  private readonly now: () => Date;
  private readonly onOutcome: SecretStoreOptions['onOutcome'];
  private readonly onRejected: SecretStoreOptions['onRejected'];

  constructor(opts: SecretStoreOptions) {
    this.logger = opts.logger;
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.now = opts.now ?? (() => new Date());
    this.onOutcome = opts.onOutcome;
    this.onRejected = opts.onRejected;
  }

  get(name: string): StoredSecret | undefined {
    return this.secrets.get(name);
  }

  names(): string[] {
    return [...this.secrets.keys()];
  }

  all(): StoredSecret[] {
    return [...this.secrets.values()];
  }

  get size(): number {
    return this.secrets.size;
  }

  put(name: string, material: SecretMaterial, origin: SecretOrigin): PutResult {
    const current = this.secrets.get(name);
    const version = contentVersion(material);
    if (current && current.version === version && current.kind === material.kind) {
      this.onOutcome?.(origin, 'unchanged');
      return { outcome: 'unchanged', secret: current };
    }
    let validated;
    try {
      const now = this.now();
      // The version hashes kind and content, so equal versions validate alike.
      validated = this.validations.get(version, now.getTime());
      if (!validated) {
        validated = validateMaterial(material, now, this.limits);
        this.validations.set(version, validated, now.getTime());
      }
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const code = (error as { code?: unknown }).code;
      this.logger.warn(
        {
          secret: name,
          origin: `${origin.source}:${origin.ref}`,
          code,
          err: error.message,
          servedVersion: current?.version ?? null,
        },
        'secret update rejected; the last good version stays',
      );
      this.onOutcome?.(origin, 'rejected');
      this.onRejected?.({ name, origin, code: typeof code === 'string' ? code : 'INVALID', message: error.message, at: this.now() });
      return { outcome: 'rejected', error, code: typeof code === 'string' ? code : 'INVALID', current };
    }
    const secret: StoredSecret = Object.freeze({
      name,
      kind: material.kind,
      version,
      material,
      origin,
      facts: validated.facts,
      warnings: Object.freeze(validated.warnings),
      updatedAt: this.now(),
    });
    this.secrets.set(name, secret);
    if (secret.warnings.length > 0) {
      this.logger.warn({ secret: name, version, warnings: secret.warnings }, 'serving secret with warnings');
    }
    this.logger.info(
      {
        secret: name,
        version,
        previousVersion: current?.version ?? null,
        origin: `${origin.source}:${origin.ref}`,
        subject: secret.facts.subject,
        notAfter: secret.facts.notAfter.toISOString(),
      },
      current ? 'secret updated' : 'secret added',
    );
    const outcome = current ? 'updated' : 'created';
    this.onOutcome?.(origin, outcome);
    this.notify(name, secret);
    return { outcome, secret };
  }

  delete(name: string, origin: SecretOrigin): boolean {
    const current = this.secrets.get(name);
    if (!current) return false;
    this.secrets.delete(name);
    this.logger.info(
      { secret: name, version: current.version, origin: `${origin.source}:${origin.ref}` },
      'secret deleted',
    );
    this.notify(name, undefined);
    return true;
  }

  /** Watches one name. Returns the function that stops watching. */
  watch(name: string, watcher: SecretWatcher): () => void {
    let set = this.watchers.get(name);
    if (!set) {
      set = new Set();
      this.watchers.set(name, set);
    }
    set.add(watcher);
    return () => {
      const s = this.watchers.get(name);
      if (!s) return;
      s.delete(watcher);
      if (s.size === 0) this.watchers.delete(name);
    };
  }

  watcherCount(name: string): number {
    return this.watchers.get(name)?.size ?? 0;
  }

  private notify(name: string, secret: StoredSecret | undefined): void {
    this.pending.set(name, secret);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = [...this.pending];
    this.pending.clear();
    for (const [name, secret] of batch) {
      const set = this.watchers.get(name);
      if (!set) continue;
      for (const watcher of [...set]) {
        try {
          watcher(name, secret);
        } catch (err) {
          this.logger.error({ secret: name, err }, 'secret watcher failed');
        }
      }
    }
  }
}
