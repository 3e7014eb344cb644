import type { StoredSecret } from '../store/secret-material.js';
import { UNBOUNDED_NAMES, type NameBudget } from './identity-names.js';
import type { NodeMessage } from './messages.js';
import { checkTypeUrl, nodeInfo, type Rejection, type RequestLimits } from './request-checks.js';
import type { StreamStatus } from './stream-status.js';

/**
 * What SotW and delta sessions share: the names a stream is subscribed to, and the
 * "push only on change" rule read from the stream's delivery status.
 */
export abstract class SubscriptionState {
  protected readonly subscribed = new Set<string>();
  private requests = 0;

  constructor(
    readonly status: StreamStatus,
    protected readonly rpc: string,
    protected readonly limits: RequestLimits,
    /** Distinct names of the caller identity, across its streams. */
    protected readonly budget: NameBudget = UNBOUNDED_NAMES,
  ) {}

  /** Adds a name to the subscription, counted for the identity; returns the name as stored. */
  protected hold(name: string): string {
    const stored = this.budget.acquire(name);
    this.subscribed.add(stored);
    return stored;
  }

  /** Removes a name from the subscription and from the identity's count. */
  protected drop(name: string): boolean {
    if (!this.subscribed.delete(name)) return false;
    this.budget.release(name);
    this.status.names.delete(name);
    return true;
  }

  /** The stream ended: its names no longer count for the identity. */
  close(): void {
    for (const name of this.subscribed) this.budget.release(name);
    this.subscribed.clear();
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
