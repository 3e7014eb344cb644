import { matchesNamePattern } from '../authz/name-pattern.js';
import type { StreamStatus } from '../sds/stream-status.js';

/**
 * Per gateway and secret, where delivery stands, in istioctl proxy-status's terms:
 * SYNCED  the gateway ACKed the current version;
 * PENDING the current version was sent, no ACK yet;
 * STALE   the gateway ACKed an older version and has not ACKed the current one;
 * NACKED  the gateway rejected the version last sent (with Envoy's message);
 * NOT_SENT nothing was sent: the name is denied to the caller, or does not exist (yet).
 */
export type DeliveryState = 'SYNCED' | 'PENDING' | 'STALE' | 'NACKED' | 'NOT_SENT';
export const DELIVERY_STATES: readonly DeliveryState[] = ['SYNCED', 'PENDING', 'STALE', 'NACKED', 'NOT_SENT'];

export interface SecretDelivery {
  name: string;
  state: DeliveryState;
  current: string | null;
  sent: string | null;
  acked: string | null;
  /** STALE and PENDING: since when the current version exists (RFC 3339). */
  behindSince?: string;
  nack?: { version: string; message: string; at: string };
  /** NOT_SENT: denied or missing (a denied name is reported as such only to operators). */
  reason?: 'denied' | 'missing';
}

export interface NodeDelivery {
  /** The server replica that holds these streams. */
  replica: string;
  node: { id: string; cluster: string };
  identity: string;
  streams: number;
  secrets: SecretDelivery[];
}

export interface CurrentSecret {
  version: string;
  updatedAt: Date;
}

/** The delivery rows of one replica's live streams, one per gateway node. */
export function deliveryReport(
  replica: string,
  streams: readonly StreamStatus[],
  current: (name: string) => CurrentSecret | undefined,
): NodeDelivery[] {
  const byNode = new Map<string, NodeDelivery>();
  for (const s of streams) {
    const node = { id: s.node?.id ?? `(stream ${s.id})`, cluster: s.node?.cluster ?? '' };
    const key = `${node.cluster}\u0000${node.id}`;
    let row = byNode.get(key);
    if (!row) {
      row = { replica, node, identity: `${s.identity.kind}:${s.identity.principals[0] ?? s.identity.peer}`, streams: 0, secrets: [] };
      byNode.set(key, row);
    }
    row.streams++;
    for (const [name, d] of s.names) {
      const cur = d.denied ? undefined : current(name);
      const entry: SecretDelivery = {
        name,
        state: 'NOT_SENT',
        current: cur?.version ?? null,
        sent: d.sent ?? null,
        acked: d.acked ?? null,
      };
      if (d.lastNack) entry.nack = { version: d.lastNack.version, message: d.lastNack.message, at: d.lastNack.at.toISOString() };
      if (d.denied) {
        entry.reason = 'denied';
      } else if (!cur) {
        entry.reason = 'missing';
      } else if (d.acked === cur.version) {
        entry.state = 'SYNCED';
      } else if (d.lastNack && d.lastNack.version === d.sent) {
        entry.state = 'NACKED';
      } else if (d.acked) {
        entry.state = 'STALE';
        entry.behindSince = cur.updatedAt.toISOString();
      } else if (d.sent) {
        entry.state = 'PENDING';
        entry.behindSince = cur.updatedAt.toISOString();
      }
      // One node may hold a name on several streams (SotW and delta, or ADS): keep the worst.
      const existing = row.secrets.findIndex((x) => x.name === name);
      if (existing < 0) row.secrets.push(entry);
      else if (severity(entry.state) > severity(row.secrets[existing]!.state)) row.secrets[existing] = entry;
    }
  }
  for (const row of byNode.values()) row.secrets.sort((a, b) => a.name.localeCompare(b.name));
  return [...byNode.values()];
}

function severity(s: DeliveryState): number {
  return { SYNCED: 0, NOT_SENT: 1, PENDING: 2, STALE: 3, NACKED: 4 }[s];
}

export interface DeliveryQuery {
  /** Node id: exact, or a trailing `*`. */
  node?: string;
  /** Secret name: exact, or a trailing `*`. */
  secret?: string;
  state?: DeliveryState;
  limit: number;
  offset: number;
}

export interface DeliveryPage {
  total: number;
  offset: number;
  limit: number;
  nodes: NodeDelivery[];
}

/** Filters (node, secret, state) and pages rows, sorted by node id then replica. */
export function queryDeliveries(rows: readonly NodeDelivery[], q: DeliveryQuery): DeliveryPage {
  const filtered = rows
    .filter((r) => q.node === undefined || matchesNamePattern(q.node, r.node.id))
    .map((r) => ({
      ...r,
      secrets: r.secrets.filter(
        (s) => (q.secret === undefined || matchesNamePattern(q.secret, s.name)) && (q.state === undefined || s.state === q.state),
      ),
    }))
    .filter((r) => r.secrets.length > 0 || (q.secret === undefined && q.state === undefined))
    .sort((a, b) => a.node.id.localeCompare(b.node.id) || a.replica.localeCompare(b.replica));
  return { total: filtered.length, offset: q.offset, limit: q.limit, nodes: filtered.slice(q.offset, q.offset + q.limit) };
}

/** Reads a query from URL parameters; a wrong value is an error message, not a guess. */
export function parseDeliveryQuery(params: URLSearchParams): DeliveryQuery | string {
  const num = (key: string, dflt: number, max: number): number | string => {
    const v = params.get(key);
    if (v === null) return dflt;
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 && n <= max ? n : `${key}: expected an integer from 0 to ${max}`;
  };
  const limit = num('limit', 500, 5000);
  const offset = num('offset', 0, Number.MAX_SAFE_INTEGER);
  if (typeof limit === 'string') return limit;
  if (typeof offset === 'string') return offset;
  const state = params.get('state') ?? undefined;
  if (state !== undefined && !(DELIVERY_STATES as readonly string[]).includes(state))
    return `state: expected one of ${DELIVERY_STATES.join(', ')}`;
  const q: DeliveryQuery = { limit, offset };
  const node = params.get('node');
  const secret = params.get('secret');
  if (node !== null) q.node = node;
  if (secret !== null) q.secret = secret;
  if (state !== undefined) q.state = state as DeliveryState;
  return q;
}
