// A Certificate's status, shaped like cert-manager's (conditions Ready and Issuing,
// notBefore, notAfter, renewalTime, revision, failedIssuanceAttempts, lastFailureTime),
// plus `renewalRequestedAt`, the trigger `envoy-sds renew` leaves, and `order`: the
// latest ACME order with its challenges, what cert-manager shows as Order and
// Challenge resources (`kubectl get orders,challenges`). Times are RFC 3339 strings so
// the JSON file and a Kubernetes status read the same. The shapes: schema/status.ts.

import type * as z from 'zod';
import type { certificateStatus, challengeStatus, condition, orderStatus } from './schema/status.js';

export type Condition = z.output<typeof condition>;
export type ConditionType = Condition['type'];
export type CertificateStatus = z.output<typeof certificateStatus>;
export type OrderStatus = z.output<typeof orderStatus>;
export type ChallengeStatus = z.output<typeof challengeStatus>;

export function emptyStatus(): CertificateStatus {
  return { conditions: [] };
}

export function getCondition(status: CertificateStatus, type: ConditionType): Condition | undefined {
  return status.conditions.find((c) => c.type === type);
}

/**
 * A copy of `status` with the condition set. lastTransitionTime changes only when the
 * condition's status does, as Kubernetes conventions ask.
 */
export function withCondition(
  status: CertificateStatus,
  type: ConditionType,
  value: Condition['status'],
  reason: string,
  message: string,
  now: Date,
): CertificateStatus {
  const previous = getCondition(status, type);
  const lastTransitionTime = previous && previous.status === value ? previous.lastTransitionTime : now.toISOString();
  const condition: Condition = { type, status: value, reason, message, lastTransitionTime };
  const others = status.conditions.filter((c) => c.type !== type);
  // Ready first, then Issuing, whatever order they were set in.
  const conditions = [...others, condition].sort((a, b) => (a.type === b.type ? 0 : a.type === 'Ready' ? -1 : 1));
  return { ...status, conditions };
}

export function withoutCondition(status: CertificateStatus, type: ConditionType): CertificateStatus {
  return { ...status, conditions: status.conditions.filter((c) => c.type !== type) };
}

export function isReady(status: CertificateStatus): boolean {
  return getCondition(status, 'Ready')?.status === 'True';
}
