// A Certificate object (cert-manager's fields under our apiVersion) to a
// CertificateResource with cert-manager's defaults: duration 90 days, renewal at one
// third of the lifetime, an RSA 2048 key in PKCS#1, and a new key on every issuance
// (rotationPolicy Always, cert-manager's default since 1.18). The shape and the rules
// across fields are in schema/certificate-spec.ts; the toolkit's checks are here.

import { isIP } from 'node:net';
import { ConfigError } from '../config/config-error.js';
import { checkSchema } from '../config/schema/check.js';
import {
  canonicalIpAddress,
  CA_KEY_USAGES,
  checkEmailAddress,
  checkKeyUsages,
  checkSubjectAttributeLength,
  checkUri,
  isPkiError,
  normalizeCountry,
  splitUsages,
  SUBJECT_UPPER_BOUNDS,
} from '../pki/index.js';
import { parseGoDuration } from './duration.js';
import type { CertificateResource, CertificateSpec, PrivateKeySpec } from './resources.js';
import {
  certificateSpec,
  DEFAULT_DURATION,
  type CertificateSpecInput,
  specHasSubject,
  SUBJECT_LIST_FIELDS,
} from './schema/certificate-spec.js';

/** `spec` of a Certificate; `at` is the path of the object (for messages). */
export function parseCertificate(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  specRaw: unknown,
  at: string,
): CertificateResource {
  const p = `${at}.spec`;
  const s = checkSchema(certificateSpec, specRaw, p);

  // The toolkit's own checks (../pki/certificate-profile.ts): what passes here is issued.
  const commonName = s.commonName;
  if (commonName !== undefined) profile(`${p}.commonName`, () => checkSubjectAttributeLength('commonName', commonName));
  const ipAddresses = (s.ipAddresses ?? []).map((ip, i) => {
    if (isIP(ip) === 0) throw new ConfigError(`${p}.ipAddresses[${i}]`, `"${ip}" is not an IP address`);
    return canonicalIpAddress(ip);
  });
  const uris = s.uris ?? [];
  uris.forEach((u, i) => profile(`${p}.uris[${i}]`, () => checkUri(u)));
  const emailAddresses = s.emailAddresses ?? [];
  emailAddresses.forEach((e, i) => profile(`${p}.emailAddresses[${i}]`, () => checkEmailAddress(e)));

  let subject: CertificateSpec['subject'];
  if (s.subject !== undefined) {
    const { serialNumber, ...lists } = s.subject ?? {};
    subject = { ...lists, ...(serialNumber !== undefined ? { serialNumber } : {}) };
    // Countries are written upper-case; other attributes within their upper bounds.
    if (subject.countries)
      subject.countries = subject.countries.map((c, i) => profile(`${p}.subject.countries[${i}]`, () => normalizeCountry(c)));
    for (const field of [...SUBJECT_LIST_FIELDS, 'serialNumber'] as const) {
      const value = subject[field];
      if (value === undefined || !Object.hasOwn(SUBJECT_UPPER_BOUNDS, field)) continue;
      const values: string[] = Array.isArray(value) ? value : [value];
      values.forEach((v, i) =>
        profile(`${p}.subject.${field}${Array.isArray(value) ? `[${i}]` : ''}`, () =>
          checkSubjectAttributeLength(field as keyof typeof SUBJECT_UPPER_BOUNDS, v),
        ),
      );
    }
  }
  const isCA = s.isCA ?? false;
  const k: Partial<NonNullable<CertificateSpecInput['privateKey']>> = s.privateKey ?? {};
  const algorithm = k.algorithm ?? 'RSA';
  const key: PrivateKeySpec = {
    algorithm,
    size: algorithm === 'RSA' ? (k.size ?? 2048) : algorithm === 'ECDSA' ? (k.size ?? 256) : undefined,
    encoding: k.encoding ?? 'PKCS1',
    rotationPolicy: k.rotationPolicy ?? 'Always',
  };
  const usages = s.usages;
  if (usages !== undefined) {
    // The key usages as they will be issued (a CA's always include cert sign and crl sign), against the key type.
    profile(`${p}.usages`, () => {
      const keyUsages = splitUsages(usages).keyUsages;
      checkKeyUsages(key.algorithm, isCA, isCA ? [...new Set([...keyUsages, ...CA_KEY_USAGES])] : keyUsages);
    });
  }
  const durationMs = parseGoDuration(s.duration ?? DEFAULT_DURATION)!;
  const renewBefore: CertificateSpec['renewBefore'] =
    s.renewBefore !== undefined
      ? { ms: parseGoDuration(s.renewBefore)! }
      : s.renewBeforePercentage !== undefined
        ? { percentage: s.renewBeforePercentage }
        : undefined;

  return {
    name,
    namespace,
    labels,
    id: `${namespace}/${name}`,
    spec: {
      secretName: s.secretName,
      issuerRef: { name: s.issuerRef.name, kind: s.issuerRef.kind },
      commonName,
      dnsNames: s.dnsNames ?? [],
      ipAddresses,
      uris,
      emailAddresses,
      subject,
      durationMs,
      renewBefore,
      isCA,
      serveCAPrivateKey: s.serveCAPrivateKey ?? false,
      usages,
      privateKey: key,
    },
  };
}

/** Runs a toolkit check, reporting its refusal at the field's path. */
function profile<T>(at: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (isPkiError(err)) throw new ConfigError(at, err.message);
    throw err;
  }
}

/** True when the certificate's subject has at least one attribute. */
export function hasSubject(commonName: string | undefined, subject: CertificateSpec['subject']): boolean {
  return specHasSubject({ commonName, subject });
}
