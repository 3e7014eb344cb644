import type { CallerIdentity } from './identity.js';

/**
 * Decides whether a caller may receive a secret name. Implementations answer
 * synchronously when they can (the per-push path asks again on every push) and must
 * never reveal through their answer or their errors whether a name exists.
 */
export interface Authorizer {
  canRead(identity: CallerIdentity, name: string): boolean | Promise<boolean>;
  /**
   * Optional: calls `onGranted` once, when a name denied to this caller becomes readable
   * (a RoleBinding appeared). Returns the function that stops waiting.
   */
  watchGrant?(identity: CallerIdentity, name: string, onGranted: () => void): () => void;
}

/**
 * Establishes a caller's identity from what the transport knows: synchronously when it
 * can (the transport's own facts), a promise when it must ask (a TokenReview).
 */
export interface Authenticator {
  authenticate(peer: PeerInfo): CallerIdentity | Promise<CallerIdentity>;
  /**
   * Optional: follows the credential an identity was established with (a bearer token)
   * while a stream uses it; calls `onInvalid(reason)` once when the stream must end (the
   * credential nears expiry or no longer holds). Returns the function that stops following.
   */
  watchCredential?(identity: CallerIdentity, onInvalid: (reason: string) => void): () => void;
}

export interface PeerInfo {
  /** grpc-js peer string: `ip:port`, `[v6]:port` or a unix socket path. */
  address: string;
  /** Which listener accepted the call. */
  listener: 'tcp' | 'tls' | 'unix';
  /** Subject alternative names of a verified client certificate. */
  clientCertificate?: { uris: string[]; dnsNames: string[]; subject: string };
  /** The `authorization` metadata value, if any. Never logged. */
  authorization?: string;
}
