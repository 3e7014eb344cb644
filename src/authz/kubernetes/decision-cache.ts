/** One cached answer, with when it was decided and until when it is fresh. */
export interface CachedDecision<V> {
  value: V;
  decidedAt: number;
  freshUntil: number;
}

/**
 * Answers of the API server (TokenReview, SubjectAccessReview) by key, each fresh for its
 * own TTL. An expired answer is kept (until evicted) so that, while the API server does
 * not answer, the last decision can stand for a bounded time. Bounded in size: the
 * oldest entry goes first, so a flood of distinct tokens cannot grow memory.
 */
export class DecisionCache<V> {
  private readonly entries = new Map<string, CachedDecision<V>>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The fresh answer, or undefined. */
  fresh(key: string): V | undefined {
    const e = this.entries.get(key);
    return e && e.freshUntil > this.now() ? e.value : undefined;
  }

  /** The last answer if it was decided within `maxAgeMs`, fresh or not. */
  recent(key: string, maxAgeMs: number): V | undefined {
    const e = this.entries.get(key);
    return e && this.now() - e.decidedAt <= maxAgeMs ? e.value : undefined;
  }

  set(key: string, value: V, ttlMs: number): void {
    const at = this.now();
    // Re-inserting moves the key to the end: eviction is by age of the last decision.
    this.entries.delete(key);
    this.entries.set(key, { value, decidedAt: at, freshUntil: at + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
