import type { Authenticator, PeerInfo } from '../authorizer.js';
import type { CallerIdentity } from '../identity.js';
import { identityFromPeer, uriPrincipal, type PeerTrust } from '../../transport/peer-authenticator.js';
import { serviceAccountFromSpiffe } from './spiffe-service-account.js';
import type { ServiceAccountRef, TokenReviewer } from './token-reviewer.js';

/** A presented credential that does not hold: the stream fails with UNAUTHENTICATED. */
export class TokenRejectedError extends Error {
  readonly code = 'TOKEN_REJECTED';
  constructor(message: string) {
    super(message);
    this.name = 'TokenRejectedError';
  }
}

/**
 * Identity in Kubernetes: a ServiceAccount, from a bearer token (TokenReview) or from an
 * mTLS client certificate's SPIFFE ID; otherwise what the transport alone tells (loopback,
 * unix, a non-SPIFFE certificate, anonymous), which Kubernetes names never accept.
 *
 * A token that is presented and refused fails authentication (rather than falling back
 * to anonymous): Envoy then reconnects with backoff and reads its token file again, which
 * is the fix for an expired projected token.
 */
export class KubernetesAuthenticator implements Authenticator {
  constructor(
    private readonly tokens: TokenReviewer,
    private readonly spiffeTrustDomain: string | undefined,
    private readonly trust: PeerTrust = { trustLoopback: false },
  ) {}

  async authenticate(peer: PeerInfo): Promise<CallerIdentity> {
    if (peer.authorization !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(peer.authorization);
      if (!m) throw new TokenRejectedError('authorization metadata is not "Bearer <token>"');
      const sa = await this.tokens.review(m[1]!);
      if (!sa) throw new TokenRejectedError('bearer token not accepted by TokenReview for our audience');
      return serviceAccountIdentity(sa, peer.address);
    }
    if (peer.clientCertificate && this.spiffeTrustDomain) {
      const sa = serviceAccountFromSpiffe(peer.clientCertificate.uris, this.spiffeTrustDomain);
      if (sa) return serviceAccountIdentity(sa, peer.address, peer.clientCertificate);
    }
    return identityFromPeer(peer, this.trust);
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
