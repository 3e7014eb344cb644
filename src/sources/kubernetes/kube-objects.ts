import { metaOf, type ObjectMeta } from '../../kubernetes/resource-informer.js';

/** Secret keys the source reads; every other key (and its value) is dropped at once. */
export const TLS_CERT_KEYS = ['tls.crt', 'cert'] as const;
export const CA_KEYS_OF_CACERT_SECRET = ['ca.crt', 'cacert', 'tls.crt'] as const;
const SECRET_KEYS = new Set(['tls.crt', 'tls.key', 'cert', 'key', 'ca.crt', 'cacert', 'ca.crl']);
/** Istio's key for a DER OCSP response stapled with the certificate (binary, kept as bytes). */
export const OCSP_STAPLE_KEY = 'tls.ocsp-staple';

/**
 * The Secret types a CA certificate is read from (`ca.crt` of a TLS Secret, a `-cacert`
 * Secret): cert-manager's and Istio's layouts are `kubernetes.io/tls` and `Opaque`. Other
 * types that carry a `ca.crt` (legacy token Secrets, bootstrap tokens, registry
 * credentials) are never a CA bundle meant for Envoy, and serving theirs would tell a
 * caller which of them exist.
 */
export const CA_SECRET_TYPES: ReadonlySet<string> = new Set(['kubernetes.io/tls', 'Opaque']);

/** Secret types never worth holding: Helm release state and legacy token Secrets. */
export const SKIPPED_SECRET_TYPES = ['helm.sh/release.v1', 'kubernetes.io/service-account-token'] as const;

/** A Secret as the source keeps it: metadata, type, and only the keys it may serve. */
export interface SecretObject {
  meta: ObjectMeta;
  type: string;
  /** Decoded values (UTF-8 PEM text) of the keys the source reads. */
  data: Partial<Record<string, string>>;
  /** `tls.ocsp-staple`, DER. */
  ocspStaple?: Buffer;
}

/** A ConfigMap as the source keeps it: only the configured CA bundle keys. */
export interface ConfigMapObject {
  meta: ObjectMeta;
  data: Partial<Record<string, string>>;
}

export function reduceSecret(raw: Record<string, unknown>): SecretObject {
  const data: Partial<Record<string, string>> = {};
  const encoded = record(raw['data']);
  for (const [k, v] of Object.entries(encoded)) {
    if (SECRET_KEYS.has(k) && typeof v === 'string') data[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  const staple = encoded[OCSP_STAPLE_KEY];
  return {
    meta: metaOf(raw),
    type: typeof raw['type'] === 'string' ? raw['type'] : 'Opaque',
    data,
    ...(typeof staple === 'string' && staple.length > 0 ? { ocspStaple: Buffer.from(staple, 'base64') } : {}),
  };
}

export function configMapReducer(keys: readonly string[]): (raw: Record<string, unknown>) => ConfigMapObject {
  const wanted = new Set(keys);
  return (raw) => {
    const data: Partial<Record<string, string>> = {};
    for (const [k, v] of Object.entries(record(raw['binaryData']))) {
      if (wanted.has(k) && typeof v === 'string') data[k] = Buffer.from(v, 'base64').toString('utf8');
    }
    // `data` wins over `binaryData` (the API server forbids a key in both anyway).
    for (const [k, v] of Object.entries(record(raw['data']))) {
      if (wanted.has(k) && typeof v === 'string') data[k] = v;
    }
    return { meta: metaOf(raw), data };
  };
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
