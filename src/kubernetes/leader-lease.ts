// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does
// it: with several replicas one issues certificates, all of them serve.
//
// - A candidate takes the Lease when it has no holder (released) or when its record has
//   not changed for leaseDuration as observed on this candidate's own clock. The
//   holder's renewTime is not compared with our clock: replicas' clocks may disagree.
// - The holder renews every renewDeadline/2. When no renewal has succeeded for
//   renewDeadline it steps down (stops issuing) before the others may take over at
//   leaseDuration: renewDeadline < leaseDuration leaves that margin.
// - Every write carries the resourceVersion read: of two candidates racing for a free
//   Lease one gets 409 Conflict and stays a follower.
// - stop() ends leadership (waits for onStoppedLeading, so issuance work has ended) and
//   then releases the Lease (holder cleared), so a successor need not wait for expiry.

import { hostname } from 'node:os';
import type { KubeClient } from './kube-client.js';
import { KubeApiError } from './kube-errors.js';
import { silentLogger, type Logger } from '../observability/logger.js';

export interface LeaderLeaseOptions {
  /** Asked for at start: the connection is made then. */
  client: () => KubeClient;
  namespace: string;
  name: string;
  /** Default: $POD_NAME, else <hostname>-<pid>. */
  identity?: string;
  /** Whole seconds, as the Lease records it. Default 15 s. */
  leaseDurationMs?: number;
  /** Default 2/3 of leaseDuration. */
  renewDeadlineMs?: number;
  /** How often a follower looks at the Lease. Default renewDeadline/2. */
  retryPeriodMs?: number;
  onStartedLeading: () => void | Promise<void>;
  /** Awaited before the Lease is released: end the leader's work here. */
  onStoppedLeading: () => void | Promise<void>;
  logger?: Logger;
}

interface LeaseObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
  [k: string]: unknown;
}

export function defaultIdentity(): string {
  return process.env['POD_NAME'] || `${hostname()}-${process.pid}`;
}

export class LeaderLease {
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private leading = false;
  private lastRenewedAt = 0;
  /** The Lease record as last seen, and when (our clock) it last changed. */
  private observed: { record: string; at: number } | undefined;
  /** The holder the Lease named at the last read. */
  private seenHolder: string | undefined;
  private tick: Promise<void> = Promise.resolve();

  constructor(private readonly opts: LeaderLeaseOptions) {
    this.identity = opts.identity ?? defaultIdentity();
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? Math.floor((this.leaseDurationMs * 2) / 3);
    if (this.leaseDurationMs < 1000) throw new Error('leaseDuration must be at least 1 s');
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadline must be shorter than leaseDuration');
    this.retryPeriodMs = opts.retryPeriodMs ?? this.renewDeadlineMs / 2;
    this.logger = opts.logger ?? silentLogger();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Who holds the Lease as last read (ourselves while leading); undefined when nobody does. */
  get holder(): string | undefined {
    return this.leading ? this.identity : this.seenHolder;
  }

  start(): void {
    this.schedule(0);
  }

  /**
   * Ends leadership and releases the Lease. `{ release: false }` leaves the Lease held
   * until it expires, as a crashed process would (for tests of failover).
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.tick;
    if (!this.leading) return;
    await this.stepDown('stopping');
    if (opts.release === false) return;
    try {
      await this.update((lease) => {
        if (lease.spec?.holderIdentity !== this.identity) return undefined;
        const spec = { ...lease.spec, leaseDurationSeconds: 1, renewTime: microTime(new Date()) };
        delete spec.holderIdentity;
        return { ...lease, spec };
      });
      this.logger.info({ lease: this.path() }, 'leader lease released');
    } catch (err) {
      this.logger.warn({ lease: this.path(), err: (err as Error).message }, 'could not release the leader lease; it expires on its own');
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.tick = this.round().finally(() => this.schedule(this.leading ? this.renewDeadlineMs / 2 : this.retryPeriodMs));
    }, delayMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    let acquired = false;
    try {
      acquired = await this.tryAcquireOrRenew();
    } catch (err) {
      this.logger.warn({ lease: this.path(), err: (err as Error).message }, 'leader lease: API request failed');
    }
    if (this.stopped) return;
    if (acquired) {
      this.lastRenewedAt = performance.now();
      if (!this.leading) {
        this.leading = true;
        this.logger.info({ lease: this.path(), identity: this.identity }, 'became the leader: issuing certificates');
        await this.opts.onStartedLeading();
      }
    } else if (this.leading && this.seenHolder !== undefined && this.seenHolder !== this.identity) {
      await this.stepDown(`lease taken over by ${this.seenHolder}`);
    } else if (this.leading && performance.now() - this.lastRenewedAt >= this.renewDeadlineMs) {
      await this.stepDown('lease not renewed within renewDeadline');
    }
  }

  private async stepDown(reason: string): Promise<void> {
    this.leading = false;
    this.logger.info({ lease: this.path(), reason }, 'no longer the leader: issuance stopped');
    await this.opts.onStoppedLeading();
  }

  /** True when this candidate holds the Lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    let mine = false;
    const written = await this.update((lease) => {
      const spec = lease.spec ?? {};
      const record = JSON.stringify(spec);
      const t = performance.now();
      if (!this.observed || this.observed.record !== record) this.observed = { record, at: t };
      const holder = spec.holderIdentity;
      this.seenHolder = holder;
      const expired = t - this.observed.at >= this.leaseDurationMs;
      if (holder && holder !== this.identity && !expired) return undefined;
      mine = true;
      const transition = holder !== this.identity;
      return {
        ...lease,
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
          acquireTime: transition ? microTime(now) : (spec.acquireTime ?? microTime(now)),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (transition && holder ? 1 : 0),
        },
      };
    });
    return mine && written;
  }

  /** GET, change, PUT (POST when absent) with the resourceVersion read; false on 409 or no change. */
  private async update(change: (lease: LeaseObject) => LeaseObject | undefined): Promise<boolean> {
    const client = this.opts.client();
    let current: LeaseObject | undefined;
    try {
      current = await client.request<LeaseObject>('GET', this.path());
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    }
    const base: LeaseObject = current ?? {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.opts.name, namespace: this.opts.namespace },
    };
    const body = change(base);
    if (!body) return false;
    try {
      if (current) await client.request('PUT', this.path(), { body });
      else await client.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${this.opts.namespace}/leases`, { body });
      if (body.spec) this.observed = { record: JSON.stringify(body.spec), at: performance.now() };
      return true;
    } catch (err) {
      // Someone else wrote first: they hold it (or renewed); we look again next round.
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }

  private path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.opts.namespace}/leases/${this.opts.name}`;
  }
}

/** MicroTime as the API server expects it: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
