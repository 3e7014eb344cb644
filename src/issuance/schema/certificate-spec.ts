// The spec of a Certificate: cert-manager's fields under our apiVersion. The CRD's schema
// (deploy/crds/certificates.yaml) is generated from this; the checks that need the PKI
// toolkit (subject lengths, URIs, usages against the key) run in parse-certificate.ts.

import * as z from 'zod';
import { anyMapping, ignored, intFrom, namedFields, nonEmpty, stringList } from '../../config/schema/fields.js';
import { atMostOne, notSet, withRules } from '../../config/schema/rules.js';
import { parseGoDuration } from '../duration.js';
import { dnsLabelName, dnsName, goDuration } from './names.js';

export const DEFAULT_DURATION = '2160h';

/** Bounds on what one Certificate may list: each entry costs a check and a SAN. */
const MAX_NAMES = 1000;

export const SUBJECT_LIST_FIELDS = [
  'organizations',
  'organizationalUnits',
  'countries',
  'provinces',
  'localities',
  'streetAddresses',
  'postalCodes',
] as const;

const subject = z.strictObject({
  organizations: stringList.max(MAX_NAMES).optional(),
  organizationalUnits: stringList.max(MAX_NAMES).optional(),
  countries: stringList.max(MAX_NAMES).optional(),
  provinces: stringList.max(MAX_NAMES).optional(),
  localities: stringList.max(MAX_NAMES).optional(),
  streetAddresses: stringList.max(MAX_NAMES).optional(),
  postalCodes: stringList.max(MAX_NAMES).optional(),
  serialNumber: nonEmpty.optional(),
});

const privateKey = withRules(
  z.strictObject({
    algorithm: z.enum(['RSA', 'ECDSA', 'Ed25519']).default('RSA'),
    size: z.int().min(0).max(8192).optional().meta({ description: 'RSA: 2048 (default), 3072 or 4096. ECDSA: 256 (default) or 384.' }),
    encoding: z.enum(['PKCS1', 'PKCS8']).default('PKCS1'),
    rotationPolicy: z.enum(['Always', 'Never']).default('Always'),
  }),
  [],
  [
    {
      field: 'size',
      message: 'RSA keys must be 2048, 3072 or 4096 bits',
      cel: "self.algorithm != 'RSA' || !has(self.size) || self.size in [2048, 3072, 4096]",
      holds: (k) => k.algorithm !== 'RSA' || k.size === undefined || [2048, 3072, 4096].includes(k.size),
    },
    {
      field: 'size',
      message: 'ECDSA P-521 is not supported by Envoy; use 256 or 384',
      cel: "self.algorithm != 'ECDSA' || !has(self.size) || self.size != 521",
      holds: (k) => k.algorithm !== 'ECDSA' || k.size !== 521,
    },
    {
      field: 'size',
      message: 'ECDSA keys must be 256 or 384',
      cel: "self.algorithm != 'ECDSA' || !has(self.size) || self.size in [256, 384]",
      holds: (k) => k.algorithm !== 'ECDSA' || k.size === undefined || k.size === 256 || k.size === 384,
    },
    {
      field: 'size',
      message: 'must not be set for Ed25519',
      cel: "self.algorithm != 'Ed25519' || !has(self.size) || self.size == 0",
      holds: (k) => k.algorithm !== 'Ed25519' || k.size === undefined || k.size === 0,
    },
  ],
);

const UNSUPPORTED_FIELDS = ['literalSubject', 'nameConstraints', 'otherNames', 'keystores'] as const;

const SANS = ['dnsNames', 'ipAddresses', 'uris', 'emailAddresses'] as const;
const hasListCel = (f: string) => `(has(self.${f}) && size(self.${f}) > 0)`;
const subjectCel = `(has(self.subject) && (has(self.subject.serialNumber) || ${SUBJECT_LIST_FIELDS.map((f) => hasListCel(`subject.${f}`)).join(' || ')}))`;
const durationCel = `(has(self.duration) ? duration(self.duration) : duration('${DEFAULT_DURATION}'))`;

type SpecInput = { commonName?: string | undefined; subject?: Partial<Record<string, unknown>> | null | undefined };

/** True when the certificate's subject has at least one attribute. */
export function specHasSubject(s: SpecInput): boolean {
  if (s.commonName !== undefined) return true;
  return Object.values(s.subject ?? {}).some((v) => (Array.isArray(v) ? v.length > 0 : v !== undefined));
}

const ms = (d: string | undefined): number => parseGoDuration(d ?? DEFAULT_DURATION) ?? Number.NaN;

export const certificateSpec = withRules(
  z.strictObject({
    secretName: dnsLabelName
      .max(253)
      .meta({ description: 'The kubernetes.io/tls Secret the certificate is written to (tls.crt, tls.key, ca.crt).' }),
    issuerRef: z.strictObject({
      name: nonEmpty,
      kind: z.enum(['Issuer', 'ClusterIssuer']).default('Issuer'),
      // cert-manager.io is accepted: in local mode there is no other issuer it could mean,
      // and it lets cert-manager YAML work with only the apiVersion changed.
      group: z
        .enum(['envoy-sds.io', 'cert-manager.io'], {
          error: (iss) => `external issuer groups are not supported (got ${JSON.stringify(iss.input)}; use envoy-sds.io)`,
        })
        .optional()
        .meta({ description: 'envoy-sds.io (cert-manager.io is accepted).' }),
    }),
    commonName: nonEmpty.optional(),
    dnsNames: z.array(dnsName).max(MAX_NAMES).optional(),
    ipAddresses: stringList.max(MAX_NAMES).optional(),
    uris: stringList.max(MAX_NAMES).optional(),
    emailAddresses: stringList.max(MAX_NAMES).optional(),
    subject: subject.nullable().optional(),
    duration: goDuration.optional().meta({ description: `Go duration syntax; default ${DEFAULT_DURATION} (90 days).` }),
    renewBefore: goDuration.optional().meta({ description: 'Go duration syntax; default one third of the duration.' }),
    renewBeforePercentage: intFrom(1, 99).optional(),
    isCA: z.boolean().optional(),
    serveCAPrivateKey: z
      .boolean()
      .optional()
      .meta({ description: "Our extension: a CA's Secret is served with its private key only when true." }),
    usages: stringList.max(32).optional(),
    privateKey: privateKey.nullable().optional(),
    literalSubject: z.string().optional(),
    otherNames: z.array(anyMapping).optional(),
    ...namedFields(['nameConstraints', 'keystores']),
    secretTemplate: ignored(anyMapping),
    revisionHistoryLimit: ignored(z.int().min(1)),
    additionalOutputFormats: ignored(z.array(anyMapping)),
    encodeUsagesInRequest: ignored(z.boolean()),
  }),
  [...UNSUPPORTED_FIELDS.map((f) => notSet(f, 'not supported by envoy-sds')), atMostOne(['renewBefore', 'renewBeforePercentage'])],
  [
    {
      message: 'at least one of commonName, dnsNames, ipAddresses, uris or emailAddresses must be set',
      cel: `has(self.commonName) || ${SANS.map(hasListCel).join(' || ')}`,
      holds: (s) => s.commonName !== undefined || SANS.some((f) => (s[f]?.length ?? 0) > 0),
    },
    {
      field: 'duration',
      message: 'must be positive',
      cel: `${durationCel} > duration('0s')`,
      holds: (s) => ms(s.duration) > 0,
    },
    {
      field: 'renewBefore',
      message: 'must be positive and shorter than the duration',
      cel: `!has(self.renewBefore) || (duration(self.renewBefore) > duration('0s') && duration(self.renewBefore) < ${durationCel})`,
      holds: (s) => s.renewBefore === undefined || (ms(s.renewBefore) > 0 && ms(s.renewBefore) < ms(s.duration)),
    },
    {
      field: 'subject',
      message: 'a CA certificate needs a subject: set commonName or subject (RFC 5280 4.1.2.6)',
      cel: `!has(self.isCA) || !self.isCA || has(self.commonName) || ${subjectCel}`,
      holds: (s) => s.isCA !== true || specHasSubject(s),
    },
  ],
);

export type CertificateSpecInput = z.output<typeof certificateSpec>;
