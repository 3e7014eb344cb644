/**
 * The secret names Envoy asks for in Kubernetes (Istio's gateway scheme):
 *   kubernetes://<ns>/<secret>          tls_certificate from Secret <secret>
 *   kubernetes://<ns>/<secret>-cacert   validation_context (Secret <secret>-cacert, else
 *                                       ca.crt of Secret <secret>)
 *   configmap://<ns>/<configmap>        validation_context from a ConfigMap
 * Shared by the source (which names to put) and authorization (what a name asks for).
 */
export type KubernetesName =
  | { scheme: 'kubernetes'; kind: 'tls_certificate'; namespace: string; secret: string }
  | { scheme: 'kubernetes'; kind: 'validation_context'; namespace: string; secret: string; base: string }
  | { scheme: 'configmap'; kind: 'validation_context'; namespace: string; configMap: string };

export const SECRET_SCHEME = 'kubernetes://';
export const CONFIGMAP_SCHEME = 'configmap://';
export const CACERT_SUFFIX = '-cacert';

// RFC 1123 label (namespace) and subdomain (object name), as the API server validates them.
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** True for names this scheme owns, valid or not: only Kubernetes may decide them. */
export function isKubernetesScheme(name: string): boolean {
  return name.startsWith(SECRET_SCHEME) || name.startsWith(CONFIGMAP_SCHEME);
}

/** Parses a name of the scheme; undefined when it is not one or is malformed. */
export function parseKubernetesName(name: string): KubernetesName | undefined {
  const scheme = name.startsWith(SECRET_SCHEME) ? 'kubernetes' : name.startsWith(CONFIGMAP_SCHEME) ? 'configmap' : undefined;
  if (!scheme) return undefined;
  const rest = name.slice(scheme === 'kubernetes' ? SECRET_SCHEME.length : CONFIGMAP_SCHEME.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const namespace = rest.slice(0, slash);
  const object = rest.slice(slash + 1);
  if (!LABEL.test(namespace) || !SUBDOMAIN.test(object)) return undefined;
  if (scheme === 'configmap') return { scheme, kind: 'validation_context', namespace, configMap: object };
  if (object.endsWith(CACERT_SUFFIX) && object.length > CACERT_SUFFIX.length) {
    return { scheme, kind: 'validation_context', namespace, secret: object, base: object.slice(0, -CACERT_SUFFIX.length) };
  }
  return { scheme, kind: 'tls_certificate', namespace, secret: object };
}

export function secretName(namespace: string, secret: string): string {
  return `${SECRET_SCHEME}${namespace}/${secret}`;
}

export function configMapName(namespace: string, configMap: string): string {
  return `${CONFIGMAP_SCHEME}${namespace}/${configMap}`;
}
