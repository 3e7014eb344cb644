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
}

/** No budget: for sessions built outside a server (FetchSecrets, unit tests). */
export const UNBOUNDED_NAMES: NameBudget = {
  fits: () => true,
  acquire: (name) => name,
  release: () => undefined,
  limit: Number.POSITIVE_INFINITY,
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
  readonly tables = new Map<string, Map<string, { name: string; refs: number }>>();

  constructor(readonly maxPerIdentity: number) {}

  budgetFor(identity: CallerIdentity): NameBudget {
    return new IdentityBudget(this, describeIdentity(identity));
  }

  /** Distinct names held by an identity (for tests and status). */
  count(identity: CallerIdentity): number {
    return this.tables.get(describeIdentity(identity))?.size ?? 0;
  }
}

/** One stream's view of its identity's table: a key and the shared map, no closures (one per stream). */
class IdentityBudget implements NameBudget {
  constructor(
    private readonly names: IdentityNames,
    private readonly key: string,
  ) {}

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
      t = new Map();
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
