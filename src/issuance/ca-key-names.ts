import type { IssuanceConfig } from './issuance-config.js';

/**
 * The served names whose private key is a CA's, and so never leaves the server: the
 * Secret of every Certificate with `isCA: true`, and every CA issuer's `ca.secretName`,
 * unless each declaration of that Secret says `serveCAPrivateKey: true`. Their `-cacert`
 * bundles stay served. `servedName` maps a Secret (namespace, name) to its SDS name.
 */
export function caKeyNames(
  resources: Pick<IssuanceConfig, 'issuers' | 'certificates'>,
  servedName: (namespace: string, secretName: string) => string,
): Set<string> {
  const ca = new Set<string>();
  // A key is served only when every declaration that makes the name a CA allows it.
  const declare = (name: string, serveKey: boolean) => {
    if (!serveKey) ca.add(name);
  };
  for (const cert of resources.certificates) {
    if (cert.spec.isCA) declare(servedName(cert.namespace, cert.spec.secretName), cert.spec.serveCAPrivateKey);
  }
  for (const issuer of resources.issuers.values()) {
    if (issuer.spec.type !== 'ca') continue;
    const name = servedName(issuer.secretNamespace, issuer.spec.secretName);
    // A Certificate that makes this Secret may opt in for it (it is its declaration).
    const maker = resources.certificates.find((c) => servedName(c.namespace, c.spec.secretName) === name);
    declare(name, issuer.spec.serveCAPrivateKey || (maker?.spec.serveCAPrivateKey ?? false));
  }
  return ca;
}
