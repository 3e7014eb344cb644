/**
 * Secret names that come from Gateway API and certificates.k8s.io objects:
 *   kubernetes-gateway://<ns>/<secret>     tls_certificate from Secret <secret>, for the
 *                                          callers that run a Gateway whose listener names
 *                                          it in certificateRefs (Istio's scheme)
 *   backendtlspolicy://<ns>/<policy>       validation_context: the CA certificates of a
 *                                          BackendTLSPolicy's caCertificateRefs, with its
 *                                          hostname / subjectAltNames as SAN matchers
 *   clustertrustbundle://<name>            validation_context from one ClusterTrustBundle
 *   clustertrustbundle-signer://<signer>[?<label>=<value>]
 *                                          validation_context: every ClusterTrustBundle of
 *                                          that signer (that carries the label), concatenated
 */
export type GatewayApiName =
  | { scheme: 'kubernetes-gateway'; kind: 'tls_certificate'; namespace: string; secret: string }
  | { scheme: 'backendtlspolicy'; kind: 'validation_context'; namespace: string; policy: string }
  | { scheme: 'clustertrustbundle'; kind: 'validation_context'; bundle: string }
  | { scheme: 'clustertrustbundle-signer'; kind: 'validation_context'; signerName: string; labels: Readonly<Record<string, string>> };

export const GATEWAY_SECRET_SCHEME = 'kubernetes-gateway://';
export const BACKEND_TLS_POLICY_SCHEME = 'backendtlspolicy://';
export const CLUSTER_TRUST_BUNDLE_SCHEME = 'clustertrustbundle://';
export const CLUSTER_TRUST_BUNDLE_SIGNER_SCHEME = 'clustertrustbundle-signer://';

const SCHEMES = [
  GATEWAY_SECRET_SCHEME,
  BACKEND_TLS_POLICY_SCHEME,
  CLUSTER_TRUST_BUNDLE_SCHEME,
  CLUSTER_TRUST_BUNDLE_SIGNER_SCHEME,
] as const;

// RFC 1123 label (namespace) and subdomain (object name), as the API server validates them.
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
// ClusterTrustBundle names carry the signer with ':' for '/' (example.com:signer:suffix).
const BUNDLE_NAME = /^[a-z0-9]([-a-z0-9.:]{0,251}[a-z0-9])?$/;
// A signer name is <domain>/<path>, as the API server requires of ClusterTrustBundles.
const SIGNER = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_./]{0,252}[A-Za-z0-9])?$/;
// Label keys ([prefix/]name) and values, as Kubernetes validates them.
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
// One label at most: the source serves a name per (signer, label) it sees, never per combination.
const MAX_SELECTOR_LABELS = 1;

/** True for names these schemes own, valid or not: only Kubernetes may decide them. */
export function isGatewayApiScheme(name: string): boolean {
  return SCHEMES.some((s) => name.startsWith(s));
}

/** Parses a name of these schemes; undefined when it is not one or is malformed. */
export function parseGatewayApiName(name: string): GatewayApiName | undefined {
  if (name.startsWith(GATEWAY_SECRET_SCHEME)) {
    const ref = namespaced(name.slice(GATEWAY_SECRET_SCHEME.length));
    return ref && { scheme: 'kubernetes-gateway', kind: 'tls_certificate', namespace: ref[0], secret: ref[1] };
  }
  if (name.startsWith(BACKEND_TLS_POLICY_SCHEME)) {
    const ref = namespaced(name.slice(BACKEND_TLS_POLICY_SCHEME.length));
    return ref && { scheme: 'backendtlspolicy', kind: 'validation_context', namespace: ref[0], policy: ref[1] };
  }
  if (name.startsWith(CLUSTER_TRUST_BUNDLE_SIGNER_SCHEME)) {
    const rest = name.slice(CLUSTER_TRUST_BUNDLE_SIGNER_SCHEME.length);
    const q = rest.indexOf('?');
    const signerName = q < 0 ? rest : rest.slice(0, q);
    if (!SIGNER.test(signerName)) return undefined;
    const labels = q < 0 ? {} : parseLabels(rest.slice(q + 1));
    return labels && { scheme: 'clustertrustbundle-signer', kind: 'validation_context', signerName, labels };
  }
  if (name.startsWith(CLUSTER_TRUST_BUNDLE_SCHEME)) {
    const bundle = name.slice(CLUSTER_TRUST_BUNDLE_SCHEME.length);
    return BUNDLE_NAME.test(bundle) ? { scheme: 'clustertrustbundle', kind: 'validation_context', bundle } : undefined;
  }
  return undefined;
}

export function gatewaySecretName(namespace: string, secret: string): string {
  return `${GATEWAY_SECRET_SCHEME}${namespace}/${secret}`;
}

export function backendTlsPolicyName(namespace: string, policy: string): string {
  return `${BACKEND_TLS_POLICY_SCHEME}${namespace}/${policy}`;
}

export function clusterTrustBundleName(bundle: string): string {
  return `${CLUSTER_TRUST_BUNDLE_SCHEME}${bundle}`;
}

export function clusterTrustBundleSignerName(signerName: string, label?: readonly [string, string]): string {
  return `${CLUSTER_TRUST_BUNDLE_SIGNER_SCHEME}${signerName}${label ? `?${label[0]}=${label[1]}` : ''}`;
}

function namespaced(rest: string): [string, string] | undefined {
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const namespace = rest.slice(0, slash);
  const object = rest.slice(slash + 1);
  return LABEL.test(namespace) && SUBDOMAIN.test(object) ? [namespace, object] : undefined;
}

/** `k=v`: the bundle must carry it; a malformed selector makes the name invalid. */
function parseLabels(query: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  const pairs = query.split('&');
  if (pairs.length > MAX_SELECTOR_LABELS) return undefined;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return undefined;
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value) || Object.hasOwn(labels, key)) return undefined;
    labels[key] = value;
  }
  return labels;
}
