import type { Logger } from '../observability/logger.js';
import type { SecretMaterial, SecretOrigin, StoredSecret } from './secret-material.js';
import { InlineValidator, type MaterialValidator } from './material-validator.js';
import { DEFAULT_LIMITS, validateMaterial, type ValidatedMaterial, type ValidationLimits } from './validate-material.js';
import { ValidationCache } from './validation-cache.js';
import { contentVersion } from './version.js';

/** Receives the newest state of a name: a secret, or undefined once it is deleted. */
export type SecretWatcher = (name: string, secret: StoredSecret | undefined) => void;

export type PutResult =
  | { outcome: 'created' | 'updated' | 'unchanged'; secret: StoredSecret }
  | { outcome: 'rejected'; error: Error; code: string; current: StoredSecret | undefined }
  /** offer() only: a later put, offer or delete of the same name came first. */
  | { outcome: 'superseded'; current: StoredSecret | undefined };

export interface SecretStoreOptions {
  logger: Logger;
  limits?: ValidationLimits;
  now?: () => Date;
  /** Told of every put outcome, for metrics. */
  onOutcome?: (origin: SecretOrigin, outcome: PutResult['outcome']) => void;
  /** Told of every rejected update (status and `inspect` show the last one per name). */
  onRejected?: (rejection: Rejection) => void;
  /** Where offer() validates; default: on this thread. main.ts passes a ValidationPool. */
  validator?: MaterialValidator;
  /**
   * How long one turn of the event loop may spend telling watchers (each of which may
   * encode and write a push), after the first `minNames` names: default 5 ms and 16.
   */
  flushSlice?: { ms: number; minNames: number };
}

/** An update refused at the store's door: the code and message, never key material. */
export interface Rejection {
  name: string;
  origin: SecretOrigin;
  code: string;
  message: string;
  at: Date;
}

/** An offer() not yet settled. */
interface Offer {
  seq: number;
  name: string;
  material: SecretMaterial;
  version: string;
  origin: SecretOrigin;
  resolve: (r: PutResult) => void;
}

/**
 * The one meeting point of sources and transport: name -> last good secret.
 *
 * Contracts:
 * - put() validates first; a rejected update leaves the last good version in place.
 * - Watchers are called after the current tick with the newest state only: a burst of
 *   updates becomes one notification per name, and a slow watcher never holds up put().
 *   A large burst is told over several ticks, a few milliseconds each (see flush()).
 * - A watcher added with watch() is not replayed the current value: the caller reads
 *   get() right after, which avoids a double send.
 * - offer() is put() with the validation done by the validator (worker threads in
 *   production), so the event loop keeps serving streams meanwhile. Per name, the
 *   latest put/offer/delete wins, whatever order validations finish in: a result
 *   older than what the name already holds is dropped ('superseded'). At most one
 *   offer per name waits for the validator; a newer one replaces it unvalidated, and
 *   at most `validator.capacity` validations are in flight, so a burst never builds
 *   an unbounded queue.
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
  private readonly validator: MaterialValidator;
  private readonly flushSlice: { ms: number; minNames: number };
  /** Orders every put, offer and delete. */
  private seq = 0;
  /** For names with unsettled offers: how many, and the seq of the state last applied. */
  private readonly unsettled = new Map<string, { count: number; applied: number }>();
  /** One offer per name waiting for the validator, oldest name first. */
  private readonly waiting = new Map<string, Offer>();
  /** Validations in flight, by version: offers of equal content share one. */
  private readonly validating = new Map<string, Promise<ValidatedMaterial>>();

  constructor(opts: SecretStoreOptions) {
    this.logger = opts.logger;
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.now = opts.now ?? (() => new Date());
    this.onOutcome = opts.onOutcome;
    this.onRejected = opts.onRejected;
    this.validator = opts.validator ?? new InlineValidator();
    this.flushSlice = opts.flushSlice ?? { ms: 5, minNames: 16 };
  }

  /** Offers waiting for, or in, validation. */
  get pendingOffers(): number {
    let n = 0;
    for (const u of this.unsettled.values()) n += u.count;
    return n;
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

  /** Validates on this thread and applies at once. Prefer offer() for sources. */
  put(name: string, material: SecretMaterial, origin: SecretOrigin): PutResult {
    const seq = ++this.seq;
    const current = this.secrets.get(name);
    const version = contentVersion(material);
    if (current && current.version === version && current.kind === material.kind) {
      this.supersedeOffers(name, seq);
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
      return this.reject(name, origin, err);
    }
    this.supersedeOffers(name, seq);
    return this.apply(name, material, version, origin, validated);
  }

  /**
   * put() with the validation done by the validator (off the event loop with a
   * ValidationPool). Resolves once the outcome is known; never rejects.
   */
  offer(name: string, material: SecretMaterial, origin: SecretOrigin): Promise<PutResult> {
    const seq = ++this.seq;
    const current = this.secrets.get(name);
    const version = contentVersion(material);
    if (current && current.version === version && current.kind === material.kind) {
      this.supersedeOffers(name, seq);
      this.onOutcome?.(origin, 'unchanged');
      return Promise.resolve({ outcome: 'unchanged', secret: current });
    }
    const cached = this.validations.get(version, this.now().getTime());
    if (cached) {
      this.supersedeOffers(name, seq);
      return Promise.resolve(this.apply(name, material, version, origin, cached));
    }
    return new Promise<PutResult>((resolve) => {
      const older = this.waiting.get(name);
      if (older) this.settle(older, this.superseded(older));
      const u = this.unsettled.get(name);
      if (u) u.count++;
      else this.unsettled.set(name, { count: 1, applied: 0 });
      // Map.set on a waiting name keeps its place in line: a name updated often is not starved.
      this.waiting.set(name, { seq, name, material, version, origin, resolve });
      this.pump();
    });
  }

  /** Starts validations while the validator has room. */
  private pump(): void {
    while (this.waiting.size > 0 && this.validating.size < this.validator.capacity) {
      const [name, offer] = this.waiting.entries().next().value as [string, Offer];
      this.waiting.delete(name);
      let validation = this.validating.get(offer.version);
      if (!validation) {
        const { version } = offer;
        validation = this.startValidation(offer.material);
        this.validating.set(version, validation);
        validation
          .then(
            (r) => this.validations.set(version, r, this.now().getTime()),
            () => undefined,
          )
          .finally(() => {
            this.validating.delete(version);
            this.pump();
          });
      }
      validation.then(
        (r) => this.finish(offer, () => this.apply(offer.name, offer.material, offer.version, offer.origin, r)),
        (err: unknown) => this.finish(offer, () => this.reject(offer.name, offer.origin, err)),
      );
    }
  }

  private startValidation(material: SecretMaterial): Promise<ValidatedMaterial> {
    try {
      return this.validator.validate(material, this.now(), this.limits);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Settles an offer whose validation ended: superseded, or `outcome()`; never throws. */
  private finish(offer: Offer, outcome: () => PutResult): void {
    let result: PutResult;
    try {
      result = this.isSuperseded(offer) ? this.superseded(offer) : outcome();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.logger.error({ secret: offer.name, err: error.message }, 'secret update failed');
      result = { outcome: 'rejected', error, code: 'INTERNAL', current: this.secrets.get(offer.name) };
    }
    this.settle(offer, result);
  }

  /** A put, offer or delete later than `offer` has been applied to its name. */
  private isSuperseded(offer: Offer): boolean {
    return (this.unsettled.get(offer.name)?.applied ?? 0) > offer.seq;
  }

  private superseded(offer: Offer): PutResult {
    this.onOutcome?.(offer.origin, 'superseded');
    return { outcome: 'superseded', current: this.secrets.get(offer.name) };
  }

  private settle(offer: Offer, result: PutResult): void {
    if (result.outcome !== 'rejected' && result.outcome !== 'superseded') this.supersedeOffers(offer.name, offer.seq);
    const u = this.unsettled.get(offer.name);
    if (u && --u.count === 0) this.unsettled.delete(offer.name);
    offer.resolve(result);
  }

  /** State `seq` is now the name's: older offers in flight lose, a waiting one is dropped unvalidated. */
  private supersedeOffers(name: string, seq: number): void {
    const u = this.unsettled.get(name);
    if (!u) return;
    u.applied = Math.max(u.applied, seq);
    const waiting = this.waiting.get(name);
    if (waiting && waiting.seq < seq) {
      this.waiting.delete(name);
      this.settle(waiting, this.superseded(waiting));
    }
  }

  private reject(name: string, origin: SecretOrigin, err: unknown): PutResult {
    const current = this.secrets.get(name);
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

  private apply(name: string, material: SecretMaterial, version: string, origin: SecretOrigin, validated: ValidatedMaterial): PutResult {
    const current = this.secrets.get(name);
    if (current && current.version === version && current.kind === material.kind) {
      this.onOutcome?.(origin, 'unchanged');
      return { outcome: 'unchanged', secret: current };
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
    this.supersedeOffers(name, ++this.seq);
    const current = this.secrets.get(name);
    if (!current) return false;
    this.secrets.delete(name);
    this.logger.info({ secret: name, version: current.version, origin: `${origin.source}:${origin.ref}` }, 'secret deleted');
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

  /**
   * Tells watchers of pending names, oldest first, for a slice of time (flushSlice),
   * then yields to the event loop and goes on in the next turn: a rollover's 10,000
   * pushes (encoded and written by the watchers) never stall the streams and I/O
   * between them. A name changed again while it waits keeps its place and is told its
   * newest state once; one told already waits behind the rest.
   */
  private flush(): void {
    this.flushScheduled = false;
    const deadline = performance.now() + this.flushSlice.ms;
    let told = 0;
    for (const [name, secret] of this.pending) {
      this.pending.delete(name);
      const set = this.watchers.get(name);
      if (set) {
        for (const watcher of [...set]) {
          try {
            watcher(name, secret);
          } catch (err) {
            this.logger.error({ secret: name, err }, 'secret watcher failed');
          }
        }
      }
      if (++told >= this.flushSlice.minNames && performance.now() >= deadline) break;
    }
    if (this.pending.size > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }
}
