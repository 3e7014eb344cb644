import type { Authorizer } from './authorizer.js';
import type { CallerIdentity } from './identity.js';
import { matchesNamePattern } from './name-pattern.js';

/**
 * Identities -> allowed name patterns, from the config file. An identity selector is
 * `loopback`, `unix`, `any-authenticated`, or a principal (`spiffe://…`, `dns:…`,
 * `system:serviceaccount:ns:sa`), with a trailing `*` allowed.
 */
export interface PolicyRule {
  identities: string[];
  names: string[];
}

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
  return id.principals.some((p) => matchesNamePattern(selector, p));
}
