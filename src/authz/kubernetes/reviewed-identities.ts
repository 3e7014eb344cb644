import type { CallerIdentity } from '../identity.js';
import type { ReviewedUser } from './token-reviewer.js';

/** The credential an identity was established with, kept beside it for its stream's life. */
export interface IdentityCredential {
  /** The bearer token (never logged); undefined for a SPIFFE client certificate. */
  token?: string;
  user: ReviewedUser;
  /** Epoch ms of the token's `exp`. */
  expiresAt?: number;
}

/**
 * What the authenticator learned about each identity it made, for the authorizer (which
 * asks SubjectAccessReview about that exact user) and the credential watch. Weakly held:
 * an identity's entry goes with its stream.
 */
export class ReviewedIdentities {
  private readonly byIdentity = new WeakMap<CallerIdentity, IdentityCredential>();

  record(identity: CallerIdentity, credential: IdentityCredential): void {
    this.byIdentity.set(identity, credential);
  }

  credentialOf(identity: CallerIdentity): IdentityCredential | undefined {
    return this.byIdentity.get(identity);
  }

  /**
   * The user to ask SubjectAccessReview about: the one TokenReview reported; for an
   * identity made elsewhere (a SPIFFE ID, a test), the ServiceAccount's user and the
   * groups every ServiceAccount token carries.
   */
  userOf(identity: CallerIdentity): ReviewedUser | undefined {
    const recorded = this.byIdentity.get(identity);
    if (recorded) return recorded.user;
    const sa = identity.serviceAccount;
    return sa ? serviceAccountUser(sa.namespace, sa.name) : undefined;
  }
}

export function serviceAccountUser(namespace: string, name: string): ReviewedUser {
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}
