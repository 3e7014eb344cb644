// What each phase of a CA rotation waits for, as a gate answer: the server's own steps
// (a bundle or leaf not loaded by the store yet, a leaf not re-issued yet) first, then the
// subscribers (fleet-wide) that have not ACKed the version the phase needs.

import { ackGate, type AckTarget, type GateResult } from '../../delivery/ack-gate.js';
import type { NodeDelivery } from '../../delivery/delivery-report.js';
import { expiredAt, firstCertificateId, sameCertificates, signedBy, splitCertificates } from '../../pki/ca-bundle.js';
import type { CertificatePersister } from '../persisters/persister.js';
import { caSecretName, type CertificateResource } from '../resources.js';
import type { RotationState } from './rotation-state.js';

export interface GateDeps {
  persister: Pick<CertificatePersister, 'readSecret'>;
  servedName(namespace: string, secretName: string): string;
  served(name: string): { version: string; pem: string } | undefined;
  deliveries(): Promise<NodeDelivery[]>;
  now(): Date;
}

export interface GateAnswer extends GateResult {
  /** Reissue: how far the leaves are. */
  leaves?: { total: number; reissued: number; requested: number };
}

/** Overlap and Retire: every subscriber of a `-cacert` name of these Secrets has ACKed `bundle`. */
export async function bundleGate(
  deps: GateDeps,
  secrets: ReadonlyArray<{ namespace: string; name: string }>,
  bundle: string,
): Promise<GateAnswer> {
  const targets: AckTarget[] = [];
  const behind: Behind[] = [];
  for (const { namespace, name } of secrets) {
    const served = caSecretName(deps.servedName(namespace, name));
    const s = deps.served(served);
    if (s && sameCertificates(s.pem, bundle)) targets.push({ name: served, version: s.version });
    else behind.push({ name: served, state: 'NOT_LOADED', always: false });
  }
  return combine(await deps.deliveries(), targets, behind);
}

/** Reissue: every leaf is signed by the new CA (or expired), loaded, and ACKed where served. */
export async function leafGate(deps: GateDeps, leaves: readonly CertificateResource[], s: RotationState): Promise<GateAnswer> {
  const targets: AckTarget[] = [];
  const behind: Behind[] = [];
  const newCa = splitCertificates(s.newChainPem)[0] ?? '';
  const now = deps.now();
  let reissued = 0;
  for (const leaf of leaves) {
    const served = deps.servedName(leaf.namespace, leaf.spec.secretName);
    const chain = (await deps.persister.readSecret(leaf.namespace, leaf.spec.secretName))?.data['tls.crt'];
    if (!chain) continue; // never issued: its first certificate comes from the new CA
    if (!signedBy(chain, newCa) && !expiredAt(chain, now)) {
      behind.push({ name: served, state: 'NOT_REISSUED', always: true });
      continue;
    }
    reissued++;
    const current = deps.served(served);
    if (current && firstCertificateId(current.pem) === firstCertificateId(chain)) targets.push({ name: served, version: current.version });
    else behind.push({ name: served, state: 'NOT_LOADED', always: false });
  }
  const answer = combine(await deps.deliveries(), targets, behind);
  return { ...answer, leaves: { total: leaves.length, reissued, requested: Object.keys(s.requested).length } };
}

interface Behind {
  name: string;
  state: 'NOT_LOADED' | 'NOT_REISSUED';
  /** Holds the gate even where nobody subscribes (a leaf not re-issued yet). */
  always: boolean;
}

function combine(rows: NodeDelivery[], targets: AckTarget[], behind: Behind[]): GateAnswer {
  const gate = ackGate(rows, targets);
  const subscribed = new Set(rows.flatMap((row) => row.secrets.filter((x) => x.reason !== 'denied').map((x) => x.name)));
  // A name nobody subscribes to needs nothing loaded: a later subscriber gets what the store holds then.
  const own = behind.filter((b) => b.always || subscribed.has(b.name)).map((b) => ({ secret: b.name, state: b.state }));
  return { ...gate, waiting: [...own, ...gate.waiting] };
}
