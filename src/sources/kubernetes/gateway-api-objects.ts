import { metaOf, type ObjectMeta } from '../../kubernetes/resource-informer.js';

/**
 * Gateway API objects as the source keeps them (sigs.k8s.io/gateway-api v1.6, standard
 * channel): only the fields that decide which Secret or CA bundle is served to whom.
 */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = 'v1';

/** A Secret a Gateway listener names in `tls.certificateRefs` (namespace defaulted). */
export interface SecretRef {
  namespace: string;
  name: string;
}

export interface GatewayObject {
  meta: ObjectMeta;
  certificateRefs: SecretRef[];
}

export interface ReferenceGrantObject {
  meta: ObjectMeta;
  from: Array<{ group: string; kind: string; namespace: string }>;
  /** name undefined: every object of that group and kind in the grant's namespace. */
  to: Array<{ group: string; kind: string; name?: string }>;
}

export interface LocalRef {
  group: string;
  kind: string;
  name: string;
}

export interface BackendTlsPolicyObject {
  meta: ObjectMeta;
  caCertificateRefs: LocalRef[];
  hostname: string;
  subjectAltNames: Array<{ type: 'Hostname' | 'URI'; value: string }>;
}

/** Bounds on what one object may make the server keep (the CRDs cap these lower still). */
const MAX_LISTENERS = 64;
const MAX_REFS = 64;

export function reduceGateway(raw: Record<string, unknown>): GatewayObject {
  const meta = metaOf(raw);
  const refs: SecretRef[] = [];
  for (const listener of list(record(raw['spec'])['listeners']).slice(0, MAX_LISTENERS)) {
    for (const ref of list(record(record(listener)['tls'])['certificateRefs']).slice(0, MAX_REFS)) {
      const r = record(ref);
      // group "" (core) and kind Secret are the defaults; other kinds are not Secrets.
      if (str(r['group']) !== '' || (str(r['kind']) || 'Secret') !== 'Secret') continue;
      const name = str(r['name']);
      if (name) refs.push({ namespace: str(r['namespace']) || meta.namespace, name });
    }
  }
  return { meta, certificateRefs: refs };
}

export function reduceReferenceGrant(raw: Record<string, unknown>): ReferenceGrantObject {
  const spec = record(raw['spec']);
  return {
    meta: metaOf(raw),
    from: list(spec['from'])
      .slice(0, MAX_REFS)
      .map((f) => {
        const r = record(f);
        return { group: str(r['group']), kind: str(r['kind']), namespace: str(r['namespace']) };
      }),
    to: list(spec['to'])
      .slice(0, MAX_REFS)
      .map((t) => {
        const r = record(t);
        const name = str(r['name']);
        return { group: str(r['group']), kind: str(r['kind']), ...(name ? { name } : {}) };
      }),
  };
}

export function reduceBackendTlsPolicy(raw: Record<string, unknown>): BackendTlsPolicyObject {
  const validation = record(record(raw['spec'])['validation']);
  return {
    meta: metaOf(raw),
    caCertificateRefs: list(validation['caCertificateRefs'])
      .slice(0, MAX_REFS)
      .map((c) => {
        const r = record(c);
        return { group: str(r['group']), kind: str(r['kind']), name: str(r['name']) };
      }),
    hostname: str(validation['hostname']),
    subjectAltNames: list(validation['subjectAltNames'])
      .slice(0, MAX_REFS)
      .flatMap((s): BackendTlsPolicyObject['subjectAltNames'] => {
        const r = record(s);
        if (r['type'] === 'Hostname' && str(r['hostname'])) return [{ type: 'Hostname', value: str(r['hostname']) }];
        if (r['type'] === 'URI' && str(r['uri'])) return [{ type: 'URI', value: str(r['uri']) }];
        return [];
      }),
  };
}

/** Does a grant in the Secret's namespace let Gateways of `gatewayNamespace` name this Secret? */
export function grantAllowsGatewaySecret(grant: ReferenceGrantObject, gatewayNamespace: string, secret: string): boolean {
  return (
    grant.from.some((f) => f.group === GATEWAY_API_GROUP && f.kind === 'Gateway' && f.namespace === gatewayNamespace) &&
    grant.to.some((t) => t.group === '' && t.kind === 'Secret' && (t.name === undefined || t.name === secret))
  );
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
