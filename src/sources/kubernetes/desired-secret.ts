import type { KubernetesName } from '../../kubernetes/kubernetes-names.js';
import type { SecretMaterial, ValidationContextMaterial } from '../../store/secret-material.js';
import { CA_KEYS_OF_CACERT_SECRET, CA_SECRET_TYPES, type ConfigMapObject, type SecretObject } from './kube-objects.js';
import type { ObjectMeta } from '../../kubernetes/resource-informer.js';

/** The object a name's content comes from: where a rejection Event goes. */
export interface SourceObject {
  kind: 'Secret' | 'ConfigMap' | 'BackendTLSPolicy' | 'ClusterTrustBundle';
  /** Default v1 (core). */
  apiVersion?: string;
  meta: ObjectMeta;
}

/**
 * What the store should hold for one name, computed from the objects alone (no I/O):
 * - absent: nothing to serve (the object is gone, or it is not a TLS/CA object);
 * - present: this material, for the store to validate;
 * - invalid: the object is meant for this name but lacks keys; the last good version stays.
 */
export type DesiredSecret =
  | { state: 'absent' }
  | { state: 'present'; material: SecretMaterial; source: SourceObject }
  | { state: 'invalid'; code: 'MISSING_KEYS'; message: string; source: SourceObject };

export type SecretLookup = (namespace: string, name: string) => SecretObject | undefined;

const ABSENT: DesiredSecret = { state: 'absent' };

export function desiredForSecretName(name: Extract<KubernetesName, { scheme: 'kubernetes' }>, lookup: SecretLookup): DesiredSecret {
  return name.kind === 'tls_certificate'
    ? tlsFromSecret(lookup(name.namespace, name.secret))
    : caForCacertName(lookup(name.namespace, name.secret), lookup(name.namespace, name.base));
}

/** `tls.crt` + `tls.key`, else `cert` + `key`. A Secret with neither pair is not a TLS Secret. */
export function tlsFromSecret(secret: SecretObject | undefined): DesiredSecret {
  if (!secret) return ABSENT;
  const source: SourceObject = { kind: 'Secret', meta: secret.meta };
  const d = secret.data;
  const pairs: Array<[string, string]> = [
    ['tls.crt', 'tls.key'],
    ['cert', 'key'],
  ];
  for (const [certKey, keyKey] of pairs) {
    const cert = d[certKey];
    const key = d[keyKey];
    if (cert && key) {
      const staple = secret.ocspStaple;
      return {
        state: 'present',
        material: { kind: 'tls_certificate', certificateChain: cert, privateKey: key, ...(staple ? { ocspStaple: staple } : {}) },
        source,
      };
    }
  }
  // Meant as a TLS Secret (its type, or one half of a pair is there) but incomplete. A
  // lone `key` is common in unrelated Opaque Secrets, so it alone does not count.
  if (secret.type === 'kubernetes.io/tls' || d['tls.crt'] || d['tls.key'] || d['cert']) {
    const missing = pairs[d['cert'] && !d['tls.crt'] ? 1 : 0]!.filter((k) => !d[k]);
    return { state: 'invalid', code: 'MISSING_KEYS', message: `Secret has no non-empty ${missing.join(' and ')}`, source };
  }
  return ABSENT;
}

/**
 * `<base>-cacert`: Secret `<base>-cacert` when it exists (its ca.crt, cacert or tls.crt),
 * else `ca.crt` of Secret `<base>`; either only when of a CA-carrying type (CA_SECRET_TYPES).
 */
export function caForCacertName(cacertSecret: SecretObject | undefined, baseSecret: SecretObject | undefined): DesiredSecret {
  if (cacertSecret && !CA_SECRET_TYPES.has(cacertSecret.type)) cacertSecret = undefined;
  if (baseSecret && !CA_SECRET_TYPES.has(baseSecret.type)) baseSecret = undefined;
  if (cacertSecret) {
    const source: SourceObject = { kind: 'Secret', meta: cacertSecret.meta };
    const key = CA_KEYS_OF_CACERT_SECRET.find((k) => cacertSecret.data[k]);
    if (!key) {
      return { state: 'invalid', code: 'MISSING_KEYS', message: `Secret has none of ${CA_KEYS_OF_CACERT_SECRET.join(', ')}`, source };
    }
    return {
      state: 'present',
      material: withCrl({ kind: 'validation_context', trustedCa: cacertSecret.data[key]! }, cacertSecret),
      source,
    };
  }
  const ca = baseSecret?.data['ca.crt'];
  if (baseSecret && ca) {
    return {
      state: 'present',
      material: withCrl({ kind: 'validation_context', trustedCa: ca }, baseSecret),
      source: { kind: 'Secret', meta: baseSecret.meta },
    };
  }
  return ABSENT;
}

/** Istio's `ca.crl` beside the CA certificates: served as the validation context's `crl`. */
function withCrl(material: ValidationContextMaterial, secret: SecretObject): ValidationContextMaterial {
  const crl = secret.data['ca.crl'];
  return crl ? { ...material, crl } : material;
}

/** The first configured key that is present; a ConfigMap with none is not a CA bundle. */
export function caFromConfigMap(cm: ConfigMapObject | undefined, keys: readonly string[]): DesiredSecret {
  if (!cm) return ABSENT;
  const key = keys.find((k) => cm.data[k]);
  if (!key) return ABSENT;
  return {
    state: 'present',
    material: { kind: 'validation_context', trustedCa: cm.data[key]! },
    source: { kind: 'ConfigMap', meta: cm.meta },
  };
}
