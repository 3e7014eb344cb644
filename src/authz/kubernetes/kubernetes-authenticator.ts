import { readFile } from 'node:fs/promises';
import { AuthenticationError } from '../authentication-error.js';
import type { Authenticator, PeerInfo } from '../authorizer.js';
import type { CallerIdentity } from '../identity.js';
import type { Logger } from '../../observability/logger.js';
import { identityFromPeer, isLoopback, uriPrincipal, type PeerTrust } from '../peer-authenticator.js';
import { watchCredential } from './credential-watch.js';
import { ReviewedIdentities, serviceAccountUser } from './reviewed-identities.js';
import { serviceAccountFromSpiffe } from './spiffe-service-account.js';
import type { ServiceAccountRef, TokenReviewer } from './token-reviewer.js';

/** A presented credential that does not hold: the stream fails with UNAUTHENTICATED. */
export class TokenRejectedError extends AuthenticationError {
  readonly code = 'TOKEN_REJECTED';
  constructor(message: string) {
    super(message);
    this.name = 'TokenRejectedError';
  }
}

export const PLAINTEXT_TOKEN_MESSAGE =
  'bearer tokens are not accepted over plaintext TCP from a non-loopback peer: connect through the TLS listener or the Unix socket';

export interface KubernetesAuthenticatorOptions {
  tokens: TokenReviewer;
  spiffeTrustDomain: string | undefined;
  identities: ReviewedIdentities;
  /** How often an open stream's token is reviewed again. */
  reviewIntervalMs: number;
  logger: () => Logger;
  /** Whether a loopback peer is the `loopback` identity (off by default in Kubernetes). */
  trust?: PeerTrust;
  /** Sidecar mode: a Unix socket caller is the pod's ServiceAccount, by this token file (re-read each time: it rotates). */
  sidecarTokenFile?: string;
}

/**
 * Identity in Kubernetes: a ServiceAccount, from a bearer token (TokenReview) or from an
 * mTLS client certificate's SPIFFE ID; otherwise what the transport alone tells (loopback,
 * unix, a non-SPIFFE certificate, anonymous), which Kubernetes names never accept.
 *
 * A token that is presented and refused fails authentication (rather than falling back
 * to anonymous): Envoy then reconnects with backoff and reads its token file again, which
 * is the fix for an expired projected token. A token sent in clear over the network is
 * refused too: whoever saw it could replay it.
 */
export class KubernetesAuthenticator implements Authenticator {
  constructor(private readonly opts: KubernetesAuthenticatorOptions) {}

  async authenticate(peer: PeerInfo): Promise<CallerIdentity> {
    if (peer.authorization !== undefined) {
      if (peer.listener === 'tcp' && !isLoopback(peer.address)) throw new TokenRejectedError(PLAINTEXT_TOKEN_MESSAGE);
      const m = /^Bearer\s+(\S+)\s*$/i.exec(peer.authorization);
      if (!m) throw new TokenRejectedError('authorization metadata is not "Bearer <token>"');
      return this.fromToken(m[1]!, peer.address, 'bearer token not accepted by TokenReview for our audience');
    }
    const sidecarToken = this.opts.sidecarTokenFile;
    if (peer.listener === 'unix' && sidecarToken) {
      // The socket's file mode admits only the pod's containers: they are the pod's ServiceAccount.
      let token: string;
      try {
        token = (await readFile(sidecarToken, 'utf8')).trim();
      } catch (err) {
        throw new TokenRejectedError(
          `sidecar mode: cannot read the pod's token file ${sidecarToken} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
      return this.fromToken(
        token,
        peer.address,
        `sidecar mode: the pod's token (${sidecarToken}) is not accepted by TokenReview for our audience`,
      );
    }
    if (peer.clientCertificate && this.opts.spiffeTrustDomain) {
      const sa = serviceAccountFromSpiffe(peer.clientCertificate.uris, this.opts.spiffeTrustDomain);
      if (sa) {
        const identity = serviceAccountIdentity(sa, peer.address, peer.clientCertificate);
        this.opts.identities.record(identity, { user: serviceAccountUser(sa.namespace, sa.name) });
        return identity;
      }
    }
    return identityFromPeer(peer, this.opts.trust ?? { trustLoopback: false });
  }

  private async fromToken(token: string, address: string, refused: string): Promise<CallerIdentity> {
    const reviewed = await this.opts.tokens.review(token);
    if (!reviewed) throw new TokenRejectedError(refused);
    const identity = serviceAccountIdentity(reviewed.serviceAccount, address);
    this.opts.identities.record(identity, {
      token,
      user: reviewed.user,
      ...(reviewed.expiresAt !== undefined ? { expiresAt: reviewed.expiresAt } : {}),
    });
    return identity;
  }

  /**
   * A stream on a bearer token ends at a jittered 80-95% of the token's remaining life,
   * and when a TokenReview every `reviewIntervalMs` no longer accepts it.
   */
  watchCredential(identity: CallerIdentity, onInvalid: (reason: string) => void): () => void {
    const credential = this.opts.identities.credentialOf(identity);
    if (!credential) return () => {};
    return watchCredential({
      credential,
      // Streams on the same token share one review per half interval.
      review: (token) => this.opts.tokens.review(token, { maxAgeMs: this.opts.reviewIntervalMs / 2 }),
      reviewIntervalMs: this.opts.reviewIntervalMs,
      logger: this.opts.logger(),
      onInvalid,
    });
  }
}

function serviceAccountIdentity(sa: ServiceAccountRef, peer: string, cert?: PeerInfo['clientCertificate']): CallerIdentity {
  return {
    kind: 'serviceaccount',
    principals: [`system:serviceaccount:${sa.namespace}:${sa.name}`, ...(cert?.uris ?? []).map(uriPrincipal)],
    peer,
    serviceAccount: { namespace: sa.namespace, name: sa.name },
    ...(cert ? { certificate: { uris: [...cert.uris], dnsNames: [...cert.dnsNames] } } : {}),
  };
}
