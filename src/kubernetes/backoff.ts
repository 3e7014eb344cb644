/**
 * Exponential backoff with jitter, for reconnecting to the API server: replicas that lost
 * it together do not come back in lockstep. Each delay is drawn from [cap/2, cap], where
 * cap doubles from `initialMs` up to `maxMs`; reset() after a success.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const cap = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}
