import type { StoredSecret } from '../store/secret-material.js';
import type { StreamStatus } from './stream-status.js';

/**
 * What SotW and delta sessions share: the names a stream is subscribed to, and the
 * "push only on change" rule read from the stream's delivery status.
 */
export abstract class SubscriptionState {
  protected readonly subscribed = new Set<string>();

  constructor(readonly status: StreamStatus) {}

  isSubscribed(name: string): boolean {
    return this.subscribed.has(name);
  }

  subscriptions(): string[] {
    return [...this.subscribed];
  }

  /** Push only on change: a version already sent on this stream is never re-sent. */
  needsPush(secret: StoredSecret): boolean {
    if (!this.subscribed.has(secret.name)) return false;
    const e = this.status.names.get(secret.name);
    return !e?.denied && e?.sent !== secret.version;
  }

  /** Marks a name refused by authorization: it is never sent on this stream. */
  deny(name: string): void {
    this.status.entry(name).denied = true;
  }

  /** Lifts a denial once authorization allows the name again. */
  allow(name: string): void {
    const e = this.status.names.get(name);
    if (e) e.denied = false;
  }
}
