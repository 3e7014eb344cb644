// What a CA rotation is doing, as persisted beside the issuer's CA Secret (rotation-record.ts)
// so that a restart, or another replica taking the lease, resumes it where it stood.
//
//   Overlap  every bundle built from the CA (each issued Secret's ca.crt, so `<name>-cacert`)
//            holds old + new CA; leaves are still signed by the old one. Ends when every
//            subscriber of those names has ACKed the overlap version (fleet-wide), or at
//            overlapDeadline. A NACK halts it.
//   Reissue  the CA Secret holds the new key pair; every leaf is re-issued from it, spread
//            over the window. Ends when every leaf is signed by the new CA (or expired) and
//            ACKed wherever it is served.
//   Retire   bundles hold the new CA alone. Ends when that is ACKed (or at the deadline).
//   Complete / Aborted   kept so status says how the last rotation ended.

export const PHASES = ['Overlap', 'Reissue', 'Retire', 'Complete', 'Aborted'] as const;
export type RotationPhase = (typeof PHASES)[number];
export const ACTIVE_PHASES: readonly RotationPhase[] = ['Overlap', 'Reissue', 'Retire'];

export function isActive(phase: RotationPhase): boolean {
  return ACTIVE_PHASES.includes(phase);
}

export interface RotationState {
  /** issuerId(): `ClusterIssuer/ca`, `Issuer/ns/name`. */
  issuer: string;
  phase: RotationPhase;
  trigger: 'command' | 'ca-key-rotation';
  startedAt: string;
  phaseSince: string;
  /** Trust anchors handed out before the rotation (the old ca.crt's certificates). */
  oldTrustPem: string;
  /** The new CA Secret's tls.crt (the new CA first). Its key is kept apart (rotation-record.ts). */
  newChainPem: string;
  /** Trust anchors of the new CA (its self-signed root, or the CA Secret's own ca.crt). */
  newTrustPem: string;
  /** Overlap and Retire end here even if some subscriber has not ACKed. */
  deadline: string;
  /** How Overlap ended: every subscriber ACKed, or the deadline passed. */
  overlapEnded?: 'acknowledged' | 'timeout';
  /** Reissue: per Certificate id, when its re-issuance was asked for. */
  requested: Record<string, string>;
  /** Set by a NACK (or a failure the rotation cannot get past): nothing moves until `rotate-ca` again or `--abort`. */
  halted?: { reason: string; message: string; at: string };
  /** Each phase change, oldest first. */
  history: Array<{ phase: RotationPhase; at: string; note: string }>;
}

/** A state read back from storage: checked, never trusted through a cast. */
export function parseRotationState(text: string | undefined): RotationState | undefined {
  if (!text) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const strings = ['issuer', 'startedAt', 'phaseSince', 'oldTrustPem', 'newChainPem', 'newTrustPem', 'deadline'];
  if (!strings.every((k) => typeof o[k] === 'string')) return undefined;
  if (!(PHASES as readonly unknown[]).includes(o['phase'])) return undefined;
  if (o['trigger'] !== 'command' && o['trigger'] !== 'ca-key-rotation') return undefined;
  const requested = typeof o['requested'] === 'object' && o['requested'] !== null ? (o['requested'] as Record<string, string>) : {};
  const history = Array.isArray(o['history']) ? (o['history'] as RotationState['history']) : [];
  return { ...(o as unknown as RotationState), requested, history };
}

export function withPhase(state: RotationState, phase: RotationPhase, at: Date, note: string, deadline?: Date): RotationState {
  const iso = at.toISOString();
  const next: RotationState = { ...state, phase, phaseSince: iso, history: [...state.history, { phase, at: iso, note }] };
  if (deadline) next.deadline = deadline.toISOString();
  delete next.halted;
  return next;
}
