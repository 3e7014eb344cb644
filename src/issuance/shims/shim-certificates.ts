// gateway-shim and ingress-shim, as cert-manager has them, for our Certificates: which
// Certificate custom resources an annotated Gateway or Ingress asks for. Pure: the
// controller (shim-controller.ts) gathers the objects and writes the result.
//
// - Ingress: one Certificate per `spec.tls[]` entry with a secretName, named after it,
//   with the entry's hosts as dnsNames.
// - Gateway: one Certificate per Secret that a listener names in `tls.certificateRefs`
//   (core Secret, the Gateway's own namespace: cert-manager never writes into another
//   namespace either), for listeners with a hostname and TLS mode Terminate; the
//   hostnames of every listener naming the Secret are its dnsNames.
// Annotations pick the issuer: `envoy-sds.io/issuer` (an Issuer of the same namespace) or
// `envoy-sds.io/cluster-issuer`; with `certManagerAnnotations`, cert-manager's
// `cert-manager.io/issuer` and `cert-manager.io/cluster-issuer` as well (ours win).

import { API_VERSION } from '../resources.js';

export const SHIM_OWNER_LABEL = 'envoy-sds.io/shim-owner-uid';
export const ISSUER_ANNOTATIONS = { issuer: 'envoy-sds.io/issuer', clusterIssuer: 'envoy-sds.io/cluster-issuer' } as const;
export const CERT_MANAGER_ISSUER_ANNOTATIONS = {
  issuer: 'cert-manager.io/issuer',
  clusterIssuer: 'cert-manager.io/cluster-issuer',
} as const;

export type OwnerKind = 'Gateway' | 'Ingress';
export const OWNER_API_VERSIONS: Readonly<Record<OwnerKind, string>> = {
  Gateway: 'gateway.networking.k8s.io/v1',
  Ingress: 'networking.k8s.io/v1',
};

/** A Gateway or Ingress as the shim keeps it. */
export interface ShimOwner {
  kind: OwnerKind;
  name: string;
  namespace: string;
  uid: string;
  annotations: Readonly<Record<string, string>>;
  /** Secret name -> DNS names, in the order the object gives them. */
  tls: ReadonlyMap<string, readonly string[]>;
}

/** Bounds on what one object may make the shim write. */
const MAX_CERTIFICATES_PER_OWNER = 64;
const MAX_DNS_NAMES = 100;

export function reduceShimOwner(kind: OwnerKind, raw: Record<string, unknown>): ShimOwner {
  const m = rec(raw['metadata']);
  const spec = rec(raw['spec']);
  const namespace = str(m['namespace']);
  const tls = new Map<string, string[]>();
  const add = (secret: string, hosts: readonly string[]): void => {
    if (!secret || (!tls.has(secret) && tls.size >= MAX_CERTIFICATES_PER_OWNER)) return;
    const names = tls.get(secret) ?? [];
    for (const h of hosts) if (h && !names.includes(h) && names.length < MAX_DNS_NAMES) names.push(h);
    tls.set(secret, names);
  };
  if (kind === 'Ingress') {
    for (const entry of list(spec['tls'])) add(str(rec(entry)['secretName']), list(rec(entry)['hosts']).map(str));
  } else {
    for (const l of list(spec['listeners'])) {
      const listener = rec(l);
      const t = rec(listener['tls']);
      const hostname = str(listener['hostname']);
      if (!hostname || (str(t['mode']) || 'Terminate') !== 'Terminate') continue;
      for (const r of list(t['certificateRefs'])) {
        const ref = rec(r);
        if (str(ref['group']) !== '' || (str(ref['kind']) || 'Secret') !== 'Secret') continue;
        if (str(ref['namespace']) && str(ref['namespace']) !== namespace) continue;
        add(str(ref['name']), [hostname]);
      }
    }
  }
  const annotations = Object.fromEntries(
    Object.entries(rec(m['annotations'])).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
  return { kind, name: str(m['name']), namespace, uid: str(m['uid']), annotations, tls };
}

/** The issuer an owner's annotations name, or undefined: not for the shim. */
export function shimIssuer(
  owner: ShimOwner,
  certManagerAnnotations: boolean,
): { kind: 'Issuer' | 'ClusterIssuer'; name: string } | undefined {
  const a = owner.annotations;
  const sets = certManagerAnnotations ? [ISSUER_ANNOTATIONS, CERT_MANAGER_ISSUER_ANNOTATIONS] : [ISSUER_ANNOTATIONS];
  for (const set of sets) {
    if (a[set.issuer]) return { kind: 'Issuer', name: a[set.issuer]! };
    if (a[set.clusterIssuer]) return { kind: 'ClusterIssuer', name: a[set.clusterIssuer]! };
  }
  return undefined;
}

/** The Certificate documents the owner asks for (empty: none, or not annotated). */
export function desiredCertificates(owner: ShimOwner, certManagerAnnotations: boolean): Array<Record<string, unknown>> {
  const issuer = shimIssuer(owner, certManagerAnnotations);
  if (!issuer) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const [secretName, dnsNames] of owner.tls) {
    if (dnsNames.length === 0) continue; // cert-manager too: a Certificate needs a name
    out.push({
      apiVersion: API_VERSION,
      kind: 'Certificate',
      metadata: {
        name: secretName,
        namespace: owner.namespace,
        labels: { [SHIM_OWNER_LABEL]: owner.uid },
        ownerReferences: [
          {
            apiVersion: OWNER_API_VERSIONS[owner.kind],
            kind: owner.kind,
            name: owner.name,
            uid: owner.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { secretName, dnsNames: [...dnsNames], issuerRef: { name: issuer.name, kind: issuer.kind, group: 'envoy-sds.io' } },
    });
  }
  return out;
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
