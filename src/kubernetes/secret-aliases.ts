import { GATEWAY_SECRET_SCHEME, parseGatewayApiName } from './gateway-api-names.js';
import { secretName } from './kubernetes-names.js';
import { sidecarTarget } from './sidecar-names.js';

/**
 * The `kubernetes://` name whose Secret another name serves (`kubernetes-gateway://ns/x`,
 * and in sidecar mode `sds://…`), or undefined: what holds for the Secret (a CA's key is
 * never served) holds under every name it is served as.
 */
export function servedSecretName(name: string, sidecarNamespace: string | undefined): string | undefined {
  if (name.startsWith(GATEWAY_SECRET_SCHEME)) {
    const parsed = parseGatewayApiName(name);
    return parsed?.scheme === 'kubernetes-gateway' ? secretName(parsed.namespace, parsed.secret) : undefined;
  }
  return sidecarNamespace !== undefined ? sidecarTarget(name, sidecarNamespace) : undefined;
}
