// The zone an RFC 2136 update goes to: the closest enclosing name that has an SOA on the
// configured nameserver (cert-manager finds it the same way). An authoritative server
// answers NXDOMAIN or NODATA for names below the zone apex, and the SOA itself at it.

import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { DnsServer } from '../solvers/rfc2136.js';

/** A resolver that asks only `server` (c-ares wants an address, so a host name is looked up first). */
async function resolverFor(server: DnsServer, timeoutMs: number): Promise<Resolver> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  const address = isIP(server.host) ? server.host : (await lookup(server.host)).address;
  resolver.setServers([isIP(address) === 6 ? `[${address}]:${server.port}` : `${address}:${server.port}`]);
  return resolver;
}

export async function findZone(server: DnsServer, fqdn: string, timeoutMs = 2000): Promise<string> {
  const resolver = await resolverFor(server, timeoutMs);
  const labels = fqdn.toLowerCase().replace(/\.$/, '').split('.');
  let lastError: unknown;
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join('.');
    try {
      await resolver.resolveSoa(candidate);
      return candidate;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENODATA' || code === 'ENOTFOUND') continue;
      lastError = err;
      break;
    }
  }
  const why = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`no zone (SOA) found for ${fqdn} on ${server.host}:${server.port}${why}`);
}

/** TXT values at `name` on the server, for checking an update is visible before asking the CA. */
export async function queryTxt(server: DnsServer, name: string, timeoutMs = 2000): Promise<string[]> {
  const resolver = await resolverFor(server, timeoutMs);
  try {
    return (await resolver.resolveTxt(name)).map((chunks) => chunks.join(''));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
    throw err;
  }
}
