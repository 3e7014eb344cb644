import type { Authorizer } from './authorizer.js';
import type { CallerIdentity } from './identity.js';
import { matchesNamePattern } from './name-pattern.js';
import type { PolicyRule } from '../config/server-config.js';

export type { PolicyRule };

export class LocalPolicy implements Authorizer {
  constructor(private readonly rules: readonly PolicyRule[]) {}

  canRead(identity: CallerIdentity, name: string): boolean {
    for (const rule of this.rules) {
      if (!rule.identities.some((sel) => selects(sel, identity))) continue;
      if (rule.names.some((p) => matchesNamePattern(p, name))) return true;
    }
    return false;
  }
}

function selects(selector: string, id: CallerIdentity): boolean {
  if (selector === 'any-authenticated') return id.kind !== 'anonymous';
  if (selector === 'loopback' || selector === 'unix') return id.kind === selector;
  const uris = id.certificate?.uris ?? [];
  // URI and DNS SANs never meet: a URI SAN `dns:x` is not the DNS name x.
  if (selector.startsWith('dns:')) return (id.certificate?.dnsNames ?? []).some((d) => matchesNamePattern(selector.slice(4), d));
  if (selector.startsWith('uri:')) return uris.some((u) => matchesNamePattern(selector.slice(4), u));
  if (selector.startsWith('system:serviceaccount:')) {
    return id.kind === 'serviceaccount' && matchesNamePattern(selector, id.principals[0] ?? '');
  }
  if (selector === '*') return id.kind !== 'anonymous';
  return uris.some((u) => matchesNamePattern(selector, u));
}
