/**
 * Names of sidecar mode (the server in the gateway's pod, on a Unix socket): Istio's
 * `credentialName: sds://<name>` makes Envoy ask an SDS server on
 * /var/run/secrets/credential-uds/socket for `sds://<name>` itself, prefix included.
 *   sds://<secret>[-cacert]        = kubernetes://<pod namespace>/<secret>[-cacert]
 *   sds://<ns>/<secret>[-cacert]   = kubernetes://<ns>/<secret>[-cacert]
 * (Kubernetes object names hold no '/', so the two forms cannot be confused.)
 */
import { parseKubernetesName, SECRET_SCHEME, secretName } from './kubernetes-names.js';

export const SIDECAR_SCHEME = 'sds://';

/** The Kubernetes name an `sds://` name stands for; undefined when it is not one or is malformed. */
export function sidecarTarget(name: string, podNamespace: string): string | undefined {
  if (!name.startsWith(SIDECAR_SCHEME)) return undefined;
  const rest = name.slice(SIDECAR_SCHEME.length);
  const target = rest.includes('/') ? `${SECRET_SCHEME}${rest}` : secretName(podNamespace, rest);
  return parseKubernetesName(target)?.scheme === 'kubernetes' ? target : undefined;
}

/** The `sds://` names a `kubernetes://` name is also served under. */
export function sidecarAliases(name: string, podNamespace: string): string[] {
  const parsed = parseKubernetesName(name);
  if (parsed?.scheme !== 'kubernetes') return [];
  const aliases = [`${SIDECAR_SCHEME}${parsed.namespace}/${parsed.secret}`];
  if (parsed.namespace === podNamespace) aliases.push(`${SIDECAR_SCHEME}${parsed.secret}`);
  return aliases;
}
