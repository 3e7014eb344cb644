// A Certificate's status, shaped like cert-manager's (conditions Ready and Issuing,
// notBefore, notAfter, renewalTime, revision, failedIssuanceAttempts, lastFailureTime),
// plus `renewalRequestedAt`, the trigger `envoy-sds renew` leaves, and `order`: the
// latest ACME order with its challenges, what cert-manager shows as Order and
// Challenge resources (`kubectl get orders,challenges`). Times are RFC 3339 strings so
// the JSON file and a Kubernetes status read the same.

export type ConditionType = 'Ready' | 'Issuing';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface CertificateStatus {
  conditions: Condition[];
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  /** Incremented on every successful issuance; 1 for the first. */
  revision?: number;
  /** Consecutive failures; cleared by a success. Drives the backoff. */
  failedIssuanceAttempts?: number;
  lastFailureTime?: string;
  /** Set by a forced renewal; cleared when the attempt it asked for ends. */
  renewalRequestedAt?: string;
  /** The ACME order of the latest attempt (kept after it ends, replaced by the next one). */
  order?: OrderStatus;
}

/** An ACME order as cert-manager's Order status shows it. */
export interface OrderStatus {
  url: string;
  /** RFC 8555 order status: pending, ready, processing, valid, invalid. */
  state: string;
  /** Why the order is invalid or could not go on (the CA's problem document, or ours). */
  reason?: string;
  challenges: ChallengeStatus[];
}

/** One authorization's challenge, as cert-manager's Challenge status shows it. */
export interface ChallengeStatus {
  /** http-01 or dns-01 (the one the selected solver answers). */
  type: string;
  /** The name being validated; `*.example.com` for a wildcard. */
  domain: string;
  url: string;
  /** RFC 8555 challenge status: pending, processing, valid, invalid. */
  state: string;
  /** True once the solver has published the token or TXT record. */
  presented: boolean;
  /** Why the challenge failed (the CA's problem document), or why it was not attempted. */
  reason?: string;
}

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
