import type { Authenticator } from '../authz/authorizer.js';
import type { CallerIdentity } from '../authz/identity.js';

/**
 * The stream driver's hook for credentials that stop holding: `end(reason)` is called
 * once when the authenticator says the identity's credential expired or was revoked (the
 * stream then ends with UNAUTHENTICATED and Envoy reconnects with its current token).
 * Returns the function to call when the stream closes first.
 */
export function followCredential(authenticator: Authenticator, identity: CallerIdentity, end: (reason: string) => void): () => void {
  return authenticator.watchCredential?.(identity, end) ?? noop;
}

/** Whether the authenticator follows credentials at all (most identities come from the transport and do not expire). */
export function followsCredentials(authenticator: Authenticator): boolean {
  return authenticator.watchCredential !== undefined;
}

function noop(): void {}
