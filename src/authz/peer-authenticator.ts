import type { Authenticator, PeerInfo } from './authorizer.js';
import type { CallerIdentity } from './identity.js';
import { hostOfPeer, isLoopbackAddress } from '../net/loopback.js';

export interface PeerTrust {
  /** Whether a loopback TCP peer is the `loopback` identity (else it is anonymous). */
  trustLoopback: boolean;
}

/**
 * Identity from the transport alone: a verified client certificate, a Unix socket, or a
 * loopback TCP peer. Token-based identity (Kubernetes) wraps this one.
 */
export class PeerAuthenticator implements Authenticator {
  /** The transport hands every stream of a connection the same PeerInfo: one identity for them all. */
  private readonly known = new WeakMap<PeerInfo, CallerIdentity>();

  constructor(private readonly trust: PeerTrust = { trustLoopback: true }) {}

  authenticate(peer: PeerInfo): CallerIdentity {
    let identity = this.known.get(peer);
    if (!identity) {
      identity = identityFromPeer(peer, this.trust);
      this.known.set(peer, identity);
    }
    return identity;
  }
}

export function identityFromPeer(peer: PeerInfo, trust: PeerTrust = { trustLoopback: true }): CallerIdentity {
  const cert = peer.clientCertificate;
  if (cert && cert.uris.length + cert.dnsNames.length > 0) {
    const principals = [...cert.uris.map(uriPrincipal), ...cert.dnsNames.map((d) => `dns:${d}`)];
    return { kind: 'x509', principals, peer: peer.address, certificate: { uris: [...cert.uris], dnsNames: [...cert.dnsNames] } };
  }
  if (peer.listener === 'unix') return { kind: 'unix', principals: ['unix'], peer: peer.address };
  if (peer.listener === 'tcp' && trust.trustLoopback && isLoopback(peer.address)) {
    return { kind: 'loopback', principals: ['loopback'], peer: peer.address };
  }
  return { kind: 'anonymous', principals: [], peer: peer.address };
}

/** A URI SAN as logs show it: prefixed where it could pass for another kind of name. */
export function uriPrincipal(uri: string): string {
  return /^(dns|uri|system|loopback|unix)(:|$)/i.test(uri) ? `uri:${uri}` : uri;
}

/** A transport peer string (`ip:port`, `[v6]:port`, `v6:port`) on the loopback network. */
export function isLoopback(address: string): boolean {
  return isLoopbackAddress(hostOfPeer(address));
}
