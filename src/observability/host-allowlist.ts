import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isLoopbackAddress } from '../net/loopback.js';

/**
 * The `Host` values the HTTP port answers: the address it is bound to (every interface
 * address when bound to 0.0.0.0 or ::), `localhost` when loopback is reachable, and the
 * configured names. Anything else is a DNS-rebinding page in someone's browser, or a
 * request meant for another server.
 */
export class HostAllowlist {
  private readonly names: Set<string>;

  constructor(
    private readonly boundHost: string,
    names: readonly string[],
  ) {
    this.names = new Set(names.map(normalize));
  }

  /** True when the Host header (`name`, `name:port`, `[v6]:port`) names this server. */
  allows(hostHeader: string | undefined): boolean {
    if (!hostHeader) return false;
    const host = hostOfHeader(hostHeader);
    if (host === undefined) return false;
    if (this.names.has(host)) return true;
    const unspecified = this.boundHost === '0.0.0.0' || this.boundHost === '::';
    const loopbackBound = isLoopbackAddress(this.boundHost);
    if (host === 'localhost') return unspecified || loopbackBound;
    if (isIP(host) === 0) return false;
    if (host === normalize(this.boundHost)) return true;
    if (loopbackBound && isLoopbackAddress(host)) return true;
    // Interfaces are read per request: a pod or a laptop may gain an address later.
    return unspecified && localAddresses().has(host);
  }
}

/** The host part of a Host header, lower-case, without port or trailing dot. */
export function hostOfHeader(value: string): string | undefined {
  const v = value.trim();
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::\d{1,5})?$/.exec(v);
  if (bracketed) return normalize(bracketed[1]!);
  const m = /^([^:\s/@]+)(?::\d{1,5})?$/.exec(v);
  return m ? normalize(m[1]!) : undefined;
}

function normalize(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(normalize(a.address.replace(/%.*$/, '')));
  }
  return out;
}
