/**
 * Token buckets by key: `capacity` requests at once, refilled at one per `intervalMs`.
 * Used for state-changing HTTP endpoints, where each accepted request may cost an order
 * at a public CA (whose own rate limits are what a flood would burn).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly capacity: number,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a token for `key`; returns 0 when allowed, else the milliseconds to wait. */
  take(key: string): number {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    const refilled = Math.min(this.capacity, b.tokens + (now - b.at) / this.intervalMs);
    if (refilled < 1) {
      this.buckets.set(key, { tokens: refilled, at: now });
      return Math.ceil((1 - refilled) * this.intervalMs);
    }
    this.buckets.set(key, { tokens: refilled - 1, at: now });
    if (this.buckets.size > 10_000) this.forgetFull(now);
    return 0;
  }

  /** Gives back the token of a request that did nothing (a follower naming the leader). */
  refund(key: string): void {
    const b = this.buckets.get(key);
    if (b) b.tokens = Math.min(this.capacity, b.tokens + 1);
  }

  /** Buckets back at capacity carry no information: drop them so keys cannot grow memory. */
  private forgetFull(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) / this.intervalMs >= this.capacity) this.buckets.delete(k);
    }
  }
}
