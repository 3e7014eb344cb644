// Multi-tenant limits on a ClusterIssuer: which namespaces may use it and which DNS names
// they may ask for. Checked before anything is generated or ordered, so a refused
// Certificate costs the CA nothing. A pure function.
//
// With DNS name patterns set, IP/URI/email SANs and CA certificates are refused: the
// patterns cannot vouch for them, and a CA certificate would let a tenant sign any name.

import type { CertificateResource, IssuerResource } from './resources.js';
import type { PolicyResult } from './policies.js';

export function CertificateIsOutsideIssuerRestrictions(certificate: CertificateResource, issuer: IssuerResource): PolicyResult | undefined {
  const r = issuer.restrictions;
  if (!r) return undefined;
  const who = `ClusterIssuer "${issuer.name}"`;
  if (r.namespaces.length > 0 && !r.namespaces.some((p) => namespaceMatches(p, certificate.namespace))) {
    return {
      reason: 'Denied',
      message: `${who} may not be used from namespace "${certificate.namespace}" (allowed: ${r.namespaces.join(', ')})`,
    };
  }
  if (r.dnsNames.length > 0) {
    const s = certificate.spec;
    if (s.isCA) return { reason: 'Denied', message: `${who} restricts DNS names and so may not issue CA certificates` };
    if (s.ipAddresses.length + s.uris.length + s.emailAddresses.length > 0) {
      return { reason: 'Denied', message: `${who} restricts DNS names and so may not issue IP, URI or email subject alternative names` };
    }
    const names = [...s.dnsNames, ...(s.commonName !== undefined ? [s.commonName] : [])];
    const refused = names.filter((n) => !r.dnsNames.some((p) => dnsNameMatches(p, n)));
    if (refused.length > 0) {
      return {
        reason: 'Denied',
        message: `${who} may not issue for ${refused.map((n) => `"${n}"`).join(', ')} (allowed: ${r.dnsNames.join(', ')})`,
      };
    }
  }
  return undefined;
}

/** `team-a` exactly, or `team-*` for a prefix. */
export function namespaceMatches(pattern: string, namespace: string): boolean {
  return pattern.endsWith('*') ? namespace.startsWith(pattern.slice(0, -1)) : pattern === namespace;
}

/**
 * `www.example.com` exactly, or `*.example.com` for any name below example.com (at any
 * depth, wildcard names included); case-insensitive.
 */
export function dnsNameMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, '');
  const n = name.toLowerCase().replace(/\.$/, '');
  if (p.startsWith('*.')) return n.endsWith(p.slice(1)) && n.length > p.length - 1;
  return p === n;
}
