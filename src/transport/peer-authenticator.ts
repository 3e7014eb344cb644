import type { Authenticator, PeerInfo } from '../authz/authorizer.js';
import type { CallerIdentity } from '../authz/identity.js';

/**
 * Identity from the transport alone: a verified client certificate, a Unix socket, or a
 * loopback TCP peer. Token-based identity (Kubernetes) wraps this one.
 */
export class PeerAuthenticator implements Authenticator {
  async authenticate(peer: PeerInfo): Promise<CallerIdentity> {
    return identityFromPeer(peer);
  }
}

export function identityFromPeer(peer: PeerInfo): CallerIdentity {
  if (peer.clientCertificate) {
    const principals = [
      ...peer.clientCertificate.uris,
      ...peer.clientCertificate.dnsNames.map((d) => `dns:${d}`),
    ];
    if (principals.length > 0) return { kind: 'x509', principals, peer: peer.address };
  }
  if (peer.listener === 'unix') return { kind: 'unix', principals: ['unix'], peer: peer.address };
  if (peer.listener === 'tcp' && isLoopback(peer.address)) {
    return { kind: 'loopback', principals: ['loopback'], peer: peer.address };
  }
  return { kind: 'anonymous', principals: [], peer: peer.address };
}

export function isLoopback(address: string): boolean {
  const host = hostOf(address);
  return host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || /^::ffff:127\./.test(host);
}

function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(address);
  if (v6) return v6[1]!;
  const i = address.lastIndexOf(':');
  return i > 0 && address.indexOf(':') === i ? address.slice(0, i) : address;
}
