// The gate between phases: has every subscriber of these names, on every replica, ACKed
// this version? Read from the fleet's delivery rows (delivery/fleet-reports.ts), so a
// gateway on another replica counts as much as one on this replica. Pure.

import type { NodeDelivery } from './delivery-report.js';

/** A served name and the version every subscriber must have ACKed. */
export interface AckTarget {
  name: string;
  version: string;
}

/** Something the gate still waits for: a subscriber behind, or a name not yet loaded. */
export interface Waiting {
  secret: string;
  /** SYNCED on an older version, PENDING, STALE...; NOT_LOADED / NOT_REISSUED for the server's own steps. */
  state: string;
  node?: string;
  cluster?: string;
  replica?: string;
  acked?: string | null;
}

export interface GateResult {
  /** (node, name) pairs that count: subscribed and not denied. */
  subscribers: number;
  waiting: Waiting[];
  /** A subscriber rejected the target version: where, and Envoy's message. */
  nack?: { secret: string; node: string; cluster: string; replica: string; version: string; message: string };
}

export function ackGate(rows: readonly NodeDelivery[], targets: readonly AckTarget[]): GateResult {
  const byName = new Map(targets.map((t) => [t.name, t.version]));
  const result: GateResult = { subscribers: 0, waiting: [] };
  for (const row of rows) {
    for (const s of row.secrets) {
      const version = byName.get(s.name);
      if (version === undefined || s.reason === 'denied') continue;
      result.subscribers++;
      if (s.acked === version) continue;
      if (s.nack && s.nack.version === version) {
        result.nack ??= {
          secret: s.name,
          node: row.node.id,
          cluster: row.node.cluster,
          replica: row.replica,
          version,
          message: s.nack.message,
        };
        continue;
      }
      result.waiting.push({
        secret: s.name,
        state: s.state,
        node: row.node.id,
        cluster: row.node.cluster,
        replica: row.replica,
        acked: s.acked,
      });
    }
  }
  return result;
}
