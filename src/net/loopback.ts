import { BlockList, isIP } from 'node:net';

// 127.0.0.0/8, ::1, and IPv4-mapped 127.0.0.0/8 (::ffff:127.0.0.0/104), which is how a
// dual-stack socket reports an IPv4 loopback peer.
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** True for an IP address (no port) on the loopback network, in any notation. */
export function isLoopbackAddress(host: string | undefined): boolean {
  if (!host) return false;
  const family = isIP(host);
  if (family === 0) return false;
  return LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The host of a transport peer string: `1.2.3.4:port`, `[v6]:port`, `v6:port` (grpc-js
 * prints IPv6 peers without brackets), or a bare address. Anything else comes back as is.
 */
export function hostOfPeer(peer: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(peer);
  if (bracketed) return bracketed[1]!;
  // A peer string carries a port, so the last `:digits` is the port even where the whole
  // string would also read as an IPv6 address (`::1:4000`).
  const withoutPort = peer.replace(/:\d+$/, '');
  if (withoutPort !== peer && isIP(withoutPort)) return withoutPort;
  return peer;
}
