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
      // A CNAME answers the SOA query (c-ares: EBADRESP): a CNAME is never a zone apex.
      if (code === 'EBADRESP' && (await hasCname(resolver, candidate))) continue;
      lastError = err;
      break;
    }
  }
  const why = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`no zone (SOA) found for ${fqdn} on ${server.host}:${server.port}${why}`);
}

async function hasCname(resolver: Resolver, name: string): Promise<boolean> {
  try {
    return (await resolver.resolveCname(name)).length > 0;
  } catch {
    return false;
  }
}

/** Most CNAMEs followed from one name: a loop or a long chain is an error, not a hang. */
const MAX_CNAME_HOPS = 8;

/**
 * Where `name` leads when its CNAMEs are followed on the server (cert-manager's
 * cnameStrategy: Follow): the last name of the chain, or `name` itself without a CNAME.
 */
export async function followCnames(server: DnsServer, name: string, timeoutMs = 2000): Promise<string> {
  const resolver = await resolverFor(server, timeoutMs);
  const seen = [name.toLowerCase().replace(/\.$/, '')];
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const current = seen.at(-1)!;
    let targets: string[];
    try {
      targets = await resolver.resolveCname(current);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENODATA' || code === 'ENOTFOUND') return current;
      throw new Error(`looking up a CNAME at ${current} on ${server.host}:${server.port}: ${(err as Error).message}`, { cause: err });
    }
    const target = targets[0]?.toLowerCase().replace(/\.$/, '');
    if (!target) return current;
    if (seen.includes(target)) throw new Error(`CNAME loop at ${name}: ${[...seen, target].join(' -> ')}`);
    seen.push(target);
  }
  throw new Error(`more than ${MAX_CNAME_HOPS} CNAMEs from ${name}: ${seen.join(' -> ')}`);
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
