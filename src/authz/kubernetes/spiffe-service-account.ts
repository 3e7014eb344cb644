import type { ServiceAccountRef } from './token-reviewer.js';

/**
 * The ServiceAccount a SPIFFE ID names in the Kubernetes layout
 * `spiffe://<trust-domain>/ns/<namespace>/sa/<name>` (Istio, SPIRE's k8s workload
 * registrar). Only IDs of our trust domain count: another domain's CA could mint any name.
 */
export function serviceAccountFromSpiffe(uris: readonly string[], trustDomain: string): ServiceAccountRef | undefined {
  const prefix = `spiffe://${trustDomain}/ns/`;
  for (const uri of uris) {
    if (!uri.startsWith(prefix)) continue;
    const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/sa\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(uri.slice(prefix.length));
    if (m) return { namespace: m[1]!, name: m[3]! };
  }
  return undefined;
}
