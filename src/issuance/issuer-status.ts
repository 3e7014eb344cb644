// An Issuer's or ClusterIssuer's status, shaped like cert-manager's: a Ready condition
// (ACME account registered, CA key pair verified, or why not) and, for ACME, the account
// URI and the email it was registered with. A bad issuer is Ready=False with a reason;
// it never stops the server.

import type * as z from 'zod';
import type { issuerStatus } from './schema/status.js';

export type IssuerStatus = z.output<typeof issuerStatus>;

/** What a backend says about itself (see CertificateIssuer.readiness). */
export interface IssuerReadiness {
  ready: boolean;
  /** cert-manager's reasons where it has one: ACMEAccountRegistered, ErrRegisterACMEAccount, KeyPairVerified, ErrGetKeyPair, ErrInvalidKeyPair, IsReady. */
  reason: string;
  message: string;
  acme?: IssuerStatus['acme'];
}

/** The status after a readiness check; lastTransitionTime moves only when Ready changes. */
export function issuerStatusFrom(previous: IssuerStatus | undefined, r: IssuerReadiness, now: Date): IssuerStatus {
  const value = r.ready ? 'True' : 'False';
  const before = previous?.conditions.find((c) => c.type === 'Ready');
  const lastTransitionTime = before && before.status === value ? before.lastTransitionTime : now.toISOString();
  return {
    conditions: [{ type: 'Ready', status: value, reason: r.reason, message: r.message, lastTransitionTime }],
    ...(r.acme ? { acme: r.acme } : previous?.acme ? { acme: previous.acme } : {}),
  };
}
