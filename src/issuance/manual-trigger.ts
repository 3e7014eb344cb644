// `cmctl renew` asks for a re-issuance by setting the Certificate's Issuing condition
// to True with reason ManuallyTriggered, in its status subresource: RBAC on
// certificates/status governs who may, and whichever replica leads picks it up. Our own
// status writes say ManuallyTriggered too while a requested renewal runs, but they also
// carry renewalRequestedAt: a condition without it was set by someone else.

import { getCondition, withCondition, type CertificateStatus } from './certificate-status.js';

export const MANUAL_TRIGGER_REASON = 'ManuallyTriggered';
export const MANUAL_TRIGGER_MESSAGE = 'Certificate re-issuance manually triggered';

/** When someone else asked for a re-issuance through the status (its time), else undefined. */
export function externalRenewalRequest(status: CertificateStatus | undefined): string | undefined {
  if (!status || status.renewalRequestedAt !== undefined) return undefined;
  const issuing = getCondition(status, 'Issuing');
  if (issuing?.status !== 'True' || issuing.reason !== MANUAL_TRIGGER_REASON) return undefined;
  return issuing.lastTransitionTime || new Date(0).toISOString();
}

/** The status `renew` writes: Issuing=True, ManuallyTriggered (as cmctl renew). */
export function manuallyTriggered(status: CertificateStatus, now: Date): CertificateStatus {
  return withCondition(status, 'Issuing', 'True', MANUAL_TRIGGER_REASON, MANUAL_TRIGGER_MESSAGE, now);
}
