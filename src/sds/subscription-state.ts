import type { StoredSecret } from '../store/secret-material.js';
import { UNBOUNDED_NAMES, type NameBudget } from './identity-names.js';
import type { NodeMessage } from './messages.js';
import { checkTypeUrl, nodeInfo, type Rejection, type RequestLimits } from './request-checks.js';
import { newDelivery, type NameDelivery, type StreamStatus } from './stream-status.js';

/** Milliseconds since the epoch; sessions are handed one and never read the wall clock. */
export type Clock = () => number;

/**
 * What SotW and delta sessions share: the subscription, kept as the stream's delivery
 * status (one map: a name is subscribed exactly while it has an entry), and the "push
 * only on change" rule read from it.
 */
export class SubscriptionState {
  private requests = 0;

  constructor(
    readonly status: StreamStatus,
    protected readonly rpc: string,
    protected readonly limits: RequestLimits,
    /** Distinct names of the caller identity, across its streams. */
    protected readonly budget: NameBudget = UNBOUNDED_NAMES,
    protected readonly now: Clock = Date.now,
  ) {}

  /** Adds a name to the subscription, counted for the identity; returns the name as stored. */
  protected hold(name: string): string {
    const stored = this.budget.acquire(name);
    this.status.names.set(stored, newDelivery());
    return stored;
  }

  /** Removes a name from the subscription and from the identity's count. */
  protected drop(name: string): boolean {
    if (!this.status.names.delete(name)) return false;
    this.budget.release(name);
    return true;
  }

  /** The delivery entry of a subscribed name (undefined once it is unsubscribed). */
  protected delivery(name: string): NameDelivery | undefined {
    return this.status.names.get(name);
  }

  /** The stream ended: its names no longer count for the identity. */
  close(): void {
    for (const name of this.status.names.keys()) this.budget.release(name);
    this.status.names.clear();
  }

  /**
   * The checks every request starts with: the type URL, and the node, which is taken
   * from the first message only (set_node_on_first_message_only).
   */
  protected admit(typeUrl: string | undefined, node: NodeMessage | null | undefined): Rejection | { first: boolean } {
    const first = this.requests++ === 0;
    const typeErr = checkTypeUrl(typeUrl, this.rpc);
    if (typeErr) return typeErr;
    if (first) this.status.node = nodeInfo(node);
    return { first };
  }

  isSubscribed(name: string): boolean {
    return this.status.names.has(name);
  }

  subscriptions(): string[] {
    return [...this.status.names.keys()];
  }

  needsPush(secret: StoredSecret): boolean {
    const e = this.status.names.get(secret.name);
    return e !== undefined && !e.denied && e.sent !== secret.version;
  }

  deny(name: string): void {
    const e = this.status.names.get(name);
    if (e) e.denied = true;
  }

  allow(name: string): void {
    const e = this.status.names.get(name);
    if (e) e.denied = false;
  }
}
