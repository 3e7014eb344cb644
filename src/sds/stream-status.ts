import type { CallerIdentity } from '../authz/identity.js';
import { NameMap } from './name-map.js';

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

/** What one stream holds of one name: an entry exists exactly while the stream is subscribed to it. */
export interface NameDelivery {
  sent: string | undefined;
  acked: string | undefined;
  lastNack: NackRecord | undefined;
  denied: boolean;
}

/** Every entry has the same fields from the start: one object shape for all of them. */
export function newDelivery(): NameDelivery {
  return { sent: undefined, acked: undefined, lastNack: undefined, denied: false };
}

/**
 * Delivery status of one stream: the answer to "which gateways still run the old
 * certificate, and why?". Kept by the session as part of its protocol state.
 */
export class StreamStatus {
  node: NodeInfo | undefined = undefined;
  /** The subscription: name -> what was sent, ACKed, NACKed or denied. */
  readonly names = new NameMap<NameDelivery>();

  constructor(
    readonly id: number,
    readonly protocol: StreamProtocol,
    readonly identity: CallerIdentity,
    /** Milliseconds since the epoch (a number: one Date object per stream is memory). */
    readonly openedAt = 0,
  ) {}

  toJSON(currentVersion: (name: string) => string | undefined): Record<string, unknown> {
    return {
      id: this.id,
      protocol: this.protocol,
      node: this.node ?? null,
      identity: { kind: this.identity.kind, principal: this.identity.principals[0] ?? null },
      peer: this.identity.peer,
      openedAt: new Date(this.openedAt).toISOString(),
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

/** A live stream as the registry sees it: it can be ended (with OK) when the server drains. */
export interface EndableStream {
  endOk(): void;
}

/** All live streams, for the status endpoint and scrape-time gauges. */
export class StreamRegistry {
  /** One entry per stream: its status and the stream itself (no closure per stream). */
  private readonly streams = new Map<StreamStatus, EndableStream>();
  private nextId = 1;

  constructor(private readonly now: () => number = Date.now) {}

  /** Registers a stream; `stream.endOk()` is called when the server drains. */
  open(protocol: StreamProtocol, identity: CallerIdentity, stream: EndableStream): StreamStatus {
    const s = new StreamStatus(this.nextId++, protocol, identity, this.now());
    this.streams.set(s, stream);
    return s;
  }

  close(status: StreamStatus): void {
    this.streams.delete(status);
  }

  /** Ends every stream (on shutdown); clients reconnect elsewhere. */
  endAll(): void {
    for (const stream of [...this.streams.values()]) stream.endOk();
  }

  get size(): number {
    return this.streams.size;
  }

  list(): StreamStatus[] {
    return [...this.streams.keys()];
  }

  /** Streams subscribed to each name (several streams share one store watch, so the store cannot say). */
  subscribers(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const s of this.streams.keys()) for (const [name] of s.names) counts.set(name, (counts.get(name) ?? 0) + 1);
    return counts;
  }

  /** Names whose last ACKed version on some stream is not the current one. */
  countBehind(currentVersion: (name: string) => string | undefined): number {
    let n = 0;
    for (const s of this.streams.keys()) {
      for (const [name, d] of s.names) {
        const cur = currentVersion(name);
        if (cur && !d.denied && d.acked !== cur) n++;
      }
    }
    return n;
  }
}
