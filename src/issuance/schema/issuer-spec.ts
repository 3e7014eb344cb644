// The spec of an Issuer or ClusterIssuer: selfSigned, ca, and acme (http01 served by our
// HTTP port, dns01 through RFC 2136). cert-manager's other issuer types and DNS
// providers are named, so a user is told at once what is missing rather than shown a
// certificate that never becomes ready. deploy/crds/{issuers,clusterissuers}.yaml are
// generated from this.

import * as z from 'zod';
import { anyMapping, ignored, namedFields, nonEmpty, stringList } from '../../config/schema/fields.js';
import { atMostOne, exactlyOne, notSet, withRules } from '../../config/schema/rules.js';
import { dataKey, dnsLabelName, secretKeySelector } from './names.js';

export const ISSUER_TYPES = ['selfSigned', 'ca', 'acme'] as const;
const UNSUPPORTED_TYPES = ['vault', 'venafi'] as const;
const DNS01_PROVIDERS = ['acmeDNS', 'akamai', 'azureDNS', 'cloudDNS', 'cloudflare', 'digitalocean', 'route53', 'webhook'] as const;

const selector = z.strictObject({
  dnsNames: stringList.max(1000).optional(),
  dnsZones: stringList.max(1000).optional(),
  matchLabels: z.record(z.string(), nonEmpty).nullable().optional(),
});

const rfc2136 = withRules(
  z.strictObject({
    nameserver: nonEmpty.meta({ description: 'host, host:port or [v6]:port; port 53 by default.' }),
    tsigKeyName: nonEmpty,
    tsigAlgorithm: nonEmpty.optional().meta({ description: 'HMACSHA1, HMACSHA224, HMACSHA256 (default), HMACSHA384 or HMACSHA512.' }),
    tsigSecretSecretRef: secretKeySelector.optional(),
    tsigSecretFile: nonEmpty.optional().meta({ description: 'Local mode: a file holding the base64 TSIG secret.' }),
  }),
  [
    exactlyOne(
      ['tsigSecretSecretRef', 'tsigSecretFile'],
      'set exactly one of tsigSecretSecretRef or tsigSecretFile (the TSIG secret is never written inline)',
    ),
  ],
);

const dns01 = withRules(
  z.strictObject({
    rfc2136,
    cnameStrategy: z.enum(['None', 'Follow']).nullable().optional(),
    ...namedFields(DNS01_PROVIDERS),
  }),
  DNS01_PROVIDERS.map((p) => notSet(p, 'this DNS provider is not supported by envoy-sds yet (supported: rfc2136)')),
);

const solver = withRules(
  z.strictObject({
    selector: selector.optional(),
    // ingress and gatewayHTTPRoute tell cert-manager how to route to its solver pod; here
    // the server's own HTTP port answers /.well-known/acme-challenge/.
    http01: z
      .strictObject({ ingress: ignored(anyMapping), gatewayHTTPRoute: ignored(anyMapping) })
      .nullable()
      .optional(),
    dns01: dns01.optional(),
  }),
  [exactlyOne(['http01', 'dns01'], 'set exactly one of http01 or dns01')],
);

const acme = withRules(
  z.strictObject({
    server: z
      .url({ protocol: /^https?$/, error: (iss) => `"${String(iss.input)}" is not an http(s) URL` })
      .meta({ description: "The ACME directory URL, such as Let's Encrypt's." }),
    email: nonEmpty.optional(),
    privateKeySecretRef: z.strictObject({ name: dnsLabelName, key: dataKey.default('tls.key') }),
    externalAccountBinding: z
      .strictObject({ keyID: nonEmpty, keySecretRef: secretKeySelector, keyAlgorithm: ignored(z.string()) })
      .optional(),
    caBundle: nonEmpty.optional().meta({ description: 'Base64 PEM bundle to trust for the ACME server.' }),
    caBundleFile: nonEmpty.optional().meta({ description: 'Local mode: a PEM bundle file to trust for the ACME server.' }),
    skipTLSVerify: z.boolean().optional(),
    preferredChain: nonEmpty.optional(),
    disableAccountKeyGeneration: z.boolean().optional(),
    solvers: z.array(solver).max(100).nullable().optional(),
    enableDurationFeature: ignored(z.boolean()),
    profile: ignored(z.string()),
  }),
  [atMostOne(['caBundle', 'caBundleFile'])],
);

const ca = z.strictObject({
  secretName: dnsLabelName,
  serveCAPrivateKey: z
    .boolean()
    .optional()
    .meta({ description: "Our extension: the CA's Secret is served with its private key only when true." }),
  crlDistributionPoints: ignored(z.array(z.string())),
  ocspServers: ignored(z.array(z.string())),
  issuingCertificateURLs: ignored(z.array(z.string())),
});

const issuerShape = {
  selfSigned: z
    .strictObject({ crlDistributionPoints: ignored(z.array(z.string())) })
    .nullable()
    .optional(),
  ca: ca.optional(),
  acme: acme.optional(),
  ...namedFields(UNSUPPORTED_TYPES),
};

const issuerRules = [
  ...UNSUPPORTED_TYPES.map((t) => notSet(t, `the ${t} issuer is not supported by envoy-sds (supported: ${ISSUER_TYPES.join(', ')})`)),
  exactlyOne(ISSUER_TYPES),
];

/** Multi-tenant limits of a ClusterIssuer (our extension to cert-manager's shape). */
const restrictions = z.strictObject({
  namespaces: stringList
    .max(1000)
    .optional()
    .meta({ description: 'Namespaces (or prefix-* patterns) a Certificate must be in; empty: any.' }),
  dnsNames: z
    .array(
      z
        .string()
        .regex(/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/, { error: (iss) => `"${String(iss.input)}" must be a DNS name or "*.suffix"` }),
    )
    .max(1000)
    .optional()
    .meta({ description: 'DNS names (or *.suffix) a Certificate may ask for; empty: any.' }),
});

export const issuerSpec = withRules(z.strictObject(issuerShape), issuerRules);
export const clusterIssuerSpec = withRules(z.strictObject({ ...issuerShape, restrictions: restrictions.optional() }), issuerRules);

export type IssuerSpecInput = z.output<typeof clusterIssuerSpec>;
export type AcmeSpecInput = NonNullable<IssuerSpecInput['acme']>;
export type SolverInput = z.output<typeof solver>;
