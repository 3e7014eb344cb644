import { describeIdentity, type CallerIdentity } from '../authz/identity.js';

/**
 * The names one stream holds, counted against its caller identity's budget. Sessions
 * check `fits` before changing their subscription, then acquire and release.
 */
export interface NameBudget {
  /**
   * Whether the identity stays within its budget when this stream takes `fresh` names
   * (not yet on this stream) and drops `dropping` (on this stream now).
   */
  fits(fresh: Iterable<string>, dropping: Iterable<string>): boolean;
  /** Counts a name for the identity; returns the identity's copy of it (one string per name). */
  acquire(name: string): string;
  release(name: string): void;
  readonly limit: number;
  /** The caller identity as logged and audited (one string, shared by its streams). */
  readonly identity: string;
}

/** No budget: for sessions built outside a server (FetchSecrets, unit tests). */
export const UNBOUNDED_NAMES: NameBudget = {
  fits: () => true,
  acquire: (name) => name,
  release: () => undefined,
  limit: Number.POSITIVE_INFINITY,
  identity: 'unknown',
};

/**
 * Distinct names per caller identity, across all its streams. Many gateway replicas
 * share one identity and ask for the same names: those count once, so the bound is on
 * what an identity can make the server remember, not on how many streams it opens.
 * Names are also interned per identity, so 40 streams asking for the same long names
 * hold one copy of each.
 */
export class IdentityNames {
  /** identity -> name -> how many streams hold it (and the identity's copy of the name). */
  readonly tables = new Map<string, IdentityTable>();

  constructor(readonly maxPerIdentity: number) {}

  /**
   * The identity's budget: one object shared by all its streams while the identity holds
   * names (a stream keeps a pointer, not an object and a key string of its own).
   */
  budgetFor(identity: CallerIdentity): NameBudget {
    const key = describeIdentity(identity);
    return this.tables.get(key)?.budget ?? new IdentityBudget(this, key);
  }

  /** Distinct names held by an identity (for tests and status). */
  count(identity: CallerIdentity): number {
    return this.tables.get(describeIdentity(identity))?.size ?? 0;
  }
}

/** One identity's names: name -> the identity's copy and how many of its streams hold it. */
class IdentityTable extends Map<string, { name: string; refs: number }> {
  constructor(readonly budget: IdentityBudget) {
    super();
  }
}

/**
 * An identity's view of its table, found by key on every call: an object a stream got
 * before the table was last emptied and made again still counts in the right place.
 */
class IdentityBudget implements NameBudget {
  constructor(
    private readonly names: IdentityNames,
    private readonly key: string,
  ) {}

  get identity(): string {
    return this.key;
  }

  get limit(): number {
    return this.names.maxPerIdentity;
  }

  fits(fresh: Iterable<string>, dropping: Iterable<string>): boolean {
    const t = this.names.tables.get(this.key);
    const size = t?.size ?? 0;
    const adding = new Set<string>();
    for (const n of fresh) if (!t?.has(n)) adding.add(n);
    if (size + adding.size <= this.limit) return true;
    let freed = 0;
    for (const n of dropping) if (t?.get(n)?.refs === 1 && !adding.has(n)) freed++;
    return size + adding.size - freed <= this.limit;
  }

  acquire(name: string): string {
    let t = this.names.tables.get(this.key);
    if (!t) {
      t = new IdentityTable(this);
      this.names.tables.set(this.key, t);
    }
    const e = t.get(name);
    if (e) {
      e.refs++;
      return e.name;
    }
    t.set(name, { name, refs: 1 });
    return name;
  }

  release(name: string): void {
    const t = this.names.tables.get(this.key);
    const e = t?.get(name);
    if (!t || !e) return;
    if (--e.refs === 0) t.delete(name);
    if (t.size === 0) this.names.tables.delete(this.key);
  }
}
