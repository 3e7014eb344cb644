/**
 * Authentication refused for a reason the caller may be told (the gRPC status details
 * carry the message): it names what to fix, never a credential. Any other error from an
 * authenticator reaches the caller as a bare "authentication failed".
 */
export class AuthenticationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

/** The status details for a failed authentication. */
export function authenticationFailureMessage(err: unknown): string {
  return err instanceof AuthenticationError ? `authentication failed: ${err.message}` : 'authentication failed';
}
