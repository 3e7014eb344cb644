import type { CallerIdentity } from '../authz/identity.js';

export type StreamProtocol = 'sotw' | 'delta' | 'ads' | 'ads-delta';

export interface NodeInfo {
  id: string;
  cluster: string;
  userAgent: string;
}

export interface NackRecord {
  /** The version the client rejected (what we last sent for that name). */
  version: string;
  message: string;
  at: Date;
}

/** What one stream holds of one name. */
export interface NameDelivery {
  sent?: string;
  acked?: string;
  lastNack?: NackRecord;
  denied?: boolean;
}

/**
 * Delivery status of one stream: the answer to "which gateways still run the old
 * certificate, and why?". Kept by the session as part of its protocol state.
 */
export class StreamStatus {
  node: NodeInfo | undefined;
  readonly names = new Map<string, NameDelivery>();
  readonly openedAt = new Date();

  constructor(
    readonly id: number,
    readonly protocol: StreamProtocol,
    readonly identity: CallerIdentity,
  ) {}

  entry(name: string): NameDelivery {
    let e = this.names.get(name);
    if (!e) {
      e = {};
      this.names.set(name, e);
    }
    return e;
  }

  toJSON(currentVersion: (name: string) => string | undefined): Record<string, unknown> {
    return {
      id: this.id,
      protocol: this.protocol,
      node: this.node ?? null,
      identity: { kind: this.identity.kind, principal: this.identity.principals[0] ?? null },
      peer: this.identity.peer,
      openedAt: this.openedAt.toISOString(),
      names: [...this.names].map(([name, d]) => ({
        name,
        current: d.denied ? null : (currentVersion(name) ?? null),
        sent: d.sent ?? null,
        acked: d.acked ?? null,
        denied: d.denied ?? false,
        lastNack: d.lastNack ? { version: d.lastNack.version, message: d.lastNack.message, at: d.lastNack.at.toISOString() } : null,
      })),
    };
  }
}

/** All live streams, for the status endpoint and scrape-time gauges. */
export class StreamRegistry {
  private readonly streams = new Map<number, StreamStatus>();
  private readonly closers = new Map<number, () => void>();
  private nextId = 1;

  /** Registers a stream; `end` closes it (with OK) when the server drains. */
  open(protocol: StreamProtocol, identity: CallerIdentity, end: () => void): StreamStatus {
    const s = new StreamStatus(this.nextId++, protocol, identity);
    this.streams.set(s.id, s);
    this.closers.set(s.id, end);
    return s;
  }

  close(status: StreamStatus): void {
    this.streams.delete(status.id);
    this.closers.delete(status.id);
  }

  /** Ends every stream (on shutdown); clients reconnect elsewhere. */
  endAll(): void {
    for (const end of [...this.closers.values()]) end();
  }

  get size(): number {
    return this.streams.size;
  }

  list(): StreamStatus[] {
    return [...this.streams.values()];
  }

  /** Names whose last ACKed version on some stream is not the current one. */
  countBehind(currentVersion: (name: string) => string | undefined): number {
    let n = 0;
    for (const s of this.streams.values()) {
      for (const [name, d] of s.names) {
        const cur = currentVersion(name);
        if (cur && !d.denied && d.acked !== cur) n++;
      }
    }
    return n;
  }
}
