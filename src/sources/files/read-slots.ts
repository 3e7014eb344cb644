/**
 * A small counting semaphore for file reads. Every fs call runs on libuv's thread pool
 * (4 threads by default), shared with DNS lookups, crypto and zlib; a file that blocks
 * (a FIFO without a reader, a hung network mount) pins a thread. Keeping our reads well
 * below the pool's size leaves threads for everything else, and bounds the descriptors
 * the file source holds at once (a config with 100,000 secrets opens at most this many).
 */
export class ReadSlots {
  private active = 0;
  /** FIFO of waiters; `head` avoids Array.shift, which is O(n) on the 100,000 queued at start. */
  private waiting: Array<() => void> = [];
  private head = 0;

  constructor(readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (active stays the same), or free it.
      const next = this.waiting[this.head];
      if (next) {
        this.waiting[this.head++] = undefined as unknown as () => void;
        if (this.head === this.waiting.length) {
          this.waiting = [];
          this.head = 0;
        }
        next();
      } else this.active--;
    }
  }

  /** Reads waiting for a slot (for tests and diagnostics). */
  get queued(): number {
    return this.waiting.length - this.head;
  }
}
