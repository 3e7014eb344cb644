// A Certificate object (cert-manager's fields under our apiVersion) to a
// CertificateResource with cert-manager's defaults: duration 90 days, renewal at one
// third of the lifetime, an RSA 2048 key in PKCS#1, and a new key on every issuance
// (rotationPolicy Always, cert-manager's default since 1.18).

import { isIP } from 'node:net';
import { ConfigError } from '../config/config-error.js';
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
import { known, obj, oneOf, optBool, optInt, optObj, optStr, str, strList, type Doc } from './fields.js';
import type { CertificateResource, CertificateSpec, KeyAlgorithm, PrivateKeySpec } from './resources.js';

const DEFAULT_DURATION_MS = 2160 * 3_600_000;

// cert-manager fields accepted for compatibility that have no effect in local mode.
const IGNORED_SPEC_FIELDS = ['secretTemplate', 'revisionHistoryLimit', 'additionalOutputFormats', 'encodeUsagesInRequest'];

const SUBJECT_FIELDS = ['organizations', 'organizationalUnits', 'countries', 'provinces', 'localities', 'streetAddresses', 'postalCodes', 'serialNumber'];

/** `spec` of a Certificate; `at` is the path of the object (for messages). */
export function parseCertificate(name: string, namespace: string, labels: Record<string, string>, specRaw: unknown, at: string): CertificateResource {
  const s = obj(specRaw, `${at}.spec`);
  const p = `${at}.spec`;
  known(
    s,
    p,
    ['secretName', 'issuerRef', 'commonName', 'dnsNames', 'ipAddresses', 'uris', 'emailAddresses', 'subject', 'duration', 'renewBefore', 'renewBeforePercentage', 'isCA', 'serveCAPrivateKey', 'usages', 'privateKey'],
    IGNORED_SPEC_FIELDS,
  );
  for (const unsupported of ['literalSubject', 'nameConstraints', 'otherNames', 'keystores']) {
    if (s[unsupported] !== undefined) throw new ConfigError(`${p}.${unsupported}`, 'not supported by envoy-sds');
  }

  const secretName = dnsLabelName(s['secretName'], `${p}.secretName`);
  const ref = obj(s['issuerRef'], `${p}.issuerRef`);
  known(ref, `${p}.issuerRef`, ['name', 'kind', 'group']);
  const group = optStr(ref['group'], `${p}.issuerRef.group`);
  // cert-manager.io is accepted: in local mode there is no other issuer it could mean,
  // and it lets cert-manager YAML work with only the apiVersion changed.
  if (group !== undefined && group !== 'envoy-sds.io' && group !== 'cert-manager.io') {
    throw new ConfigError(`${p}.issuerRef.group`, `external issuer groups are not supported (got "${group}"; use envoy-sds.io)`);
  }
  const issuerRef = {
    name: str(ref['name'], `${p}.issuerRef.name`),
    kind: ref['kind'] === undefined ? ('Issuer' as const) : oneOf(ref['kind'], `${p}.issuerRef.kind`, ['Issuer', 'ClusterIssuer'] as const),
  };

  const commonName = optStr(s['commonName'], `${p}.commonName`);
  // The toolkit's own checks (../pki/certificate-profile.ts): what passes here is issued.
  if (commonName !== undefined) profile(`${p}.commonName`, () => checkSubjectAttributeLength('commonName', commonName));
  const dnsNames = strList(s['dnsNames'], `${p}.dnsNames`);
  dnsNames.forEach((n, i) => checkDnsName(n, `${p}.dnsNames[${i}]`));
  const ipAddresses = strList(s['ipAddresses'], `${p}.ipAddresses`).map((ip, i) => {
    if (isIP(ip) === 0) throw new ConfigError(`${p}.ipAddresses[${i}]`, `"${ip}" is not an IP address`);
    return canonicalIpAddress(ip);
  });
  const uris = strList(s['uris'], `${p}.uris`);
  uris.forEach((u, i) => profile(`${p}.uris[${i}]`, () => checkUri(u)));
  const emailAddresses = strList(s['emailAddresses'], `${p}.emailAddresses`);
  emailAddresses.forEach((e, i) => profile(`${p}.emailAddresses[${i}]`, () => checkEmailAddress(e)));
  if (!commonName && dnsNames.length + ipAddresses.length + uris.length + emailAddresses.length === 0) {
    throw new ConfigError(p, 'at least one of commonName, dnsNames, ipAddresses, uris or emailAddresses must be set');
  }

  let subject: CertificateSpec['subject'];
  const subj = optObj(s['subject'], `${p}.subject`);
  if (subj) {
    known(subj, `${p}.subject`, SUBJECT_FIELDS);
    subject = {};
    for (const f of SUBJECT_FIELDS) {
      if (subj[f] === undefined) continue;
      if (f === 'serialNumber') subject.serialNumber = str(subj[f], `${p}.subject.serialNumber`);
      else (subject as Record<string, string[]>)[f] = strList(subj[f], `${p}.subject.${f}`);
    }
    // Countries are written upper-case; other attributes within their upper bounds.
    if (subject.countries) subject.countries = subject.countries.map((c, i) => profile(`${p}.subject.countries[${i}]`, () => normalizeCountry(c)));
    for (const [field, value] of Object.entries(subject)) {
      if (!Object.hasOwn(SUBJECT_UPPER_BOUNDS, field)) continue;
      const values: string[] = Array.isArray(value) ? value : [value];
      values.forEach((v, i) => profile(`${p}.subject.${field}${Array.isArray(value) ? `[${i}]` : ''}`, () => checkSubjectAttributeLength(field as keyof typeof SUBJECT_UPPER_BOUNDS, v)));
    }
  }
  const isCA = optBool(s['isCA'], `${p}.isCA`) ?? false;
  if (isCA && !hasSubject(commonName, subject)) throw new ConfigError(`${p}.subject`, 'a CA certificate needs a subject: set commonName or subject (RFC 5280 4.1.2.6)');

  const durationMs = s['duration'] === undefined ? DEFAULT_DURATION_MS : duration(s['duration'], `${p}.duration`);
  if (durationMs <= 0) throw new ConfigError(`${p}.duration`, 'must be positive');
  let renewBefore: CertificateSpec['renewBefore'];
  if (s['renewBefore'] !== undefined && s['renewBeforePercentage'] !== undefined) {
    throw new ConfigError(p, 'set at most one of renewBefore and renewBeforePercentage');
  }
  if (s['renewBefore'] !== undefined) {
    const ms = duration(s['renewBefore'], `${p}.renewBefore`);
    if (ms <= 0 || ms >= durationMs) throw new ConfigError(`${p}.renewBefore`, 'must be positive and shorter than the duration');
    renewBefore = { ms };
  } else if (s['renewBeforePercentage'] !== undefined) {
    const pct = optInt(s['renewBeforePercentage'], `${p}.renewBeforePercentage`, 1, 99)!;
    renewBefore = { percentage: pct };
  }

  const key = privateKey(s['privateKey'], `${p}.privateKey`);
  let usages: string[] | undefined;
  if (s['usages'] !== undefined && s['usages'] !== null) {
    const listed = strList(s['usages'], `${p}.usages`);
    usages = listed;
    // The key usages as they will be issued (a CA's always include cert sign and crl sign), against the key type.
    profile(`${p}.usages`, () => {
      const keyUsages = splitUsages(listed).keyUsages;
      checkKeyUsages(key.algorithm, isCA, isCA ? [...new Set([...keyUsages, ...CA_KEY_USAGES])] : keyUsages);
    });
  }

  return {
    name,
    namespace,
    labels,
    id: `${namespace}/${name}`,
    spec: {
      secretName,
      issuerRef,
      commonName,
      dnsNames,
      ipAddresses,
      uris,
      emailAddresses,
      subject,
      durationMs,
      renewBefore,
      isCA,
      serveCAPrivateKey: optBool(s['serveCAPrivateKey'], `${p}.serveCAPrivateKey`) ?? false,
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
  if (commonName !== undefined) return true;
  return Object.values(subject ?? {}).some((v) => (Array.isArray(v) ? v.length > 0 : v !== undefined));
}

function privateKey(raw: unknown, at: string): PrivateKeySpec {
  const k: Doc = optObj(raw, at) ?? {};
  known(k, at, ['algorithm', 'size', 'encoding', 'rotationPolicy']);
  const algorithm: KeyAlgorithm = k['algorithm'] === undefined ? 'RSA' : oneOf(k['algorithm'], `${at}.algorithm`, ['RSA', 'ECDSA', 'Ed25519'] as const);
  let size: number | undefined;
  if (algorithm === 'RSA') {
    size = optInt(k['size'], `${at}.size`, 0, 8192) ?? 2048;
    if (![2048, 3072, 4096].includes(size)) throw new ConfigError(`${at}.size`, 'RSA keys must be 2048, 3072 or 4096 bits');
  } else if (algorithm === 'ECDSA') {
    size = optInt(k['size'], `${at}.size`, 0, 521) ?? 256;
    if (size === 521) throw new ConfigError(`${at}.size`, 'ECDSA P-521 is not supported by Envoy; use 256 or 384');
    if (size !== 256 && size !== 384) throw new ConfigError(`${at}.size`, 'ECDSA keys must be 256 or 384');
  } else if (k['size'] !== undefined && k['size'] !== null && k['size'] !== 0) {
    throw new ConfigError(`${at}.size`, 'must not be set for Ed25519');
  }
  return {
    algorithm,
    size,
    encoding: k['encoding'] === undefined ? 'PKCS1' : oneOf(k['encoding'], `${at}.encoding`, ['PKCS1', 'PKCS8'] as const),
    rotationPolicy: k['rotationPolicy'] === undefined ? 'Always' : oneOf(k['rotationPolicy'], `${at}.rotationPolicy`, ['Always', 'Never'] as const),
  };
}

function duration(v: unknown, at: string): number {
  const text = str(v, at);
  const ms = parseGoDuration(text);
  if (ms === undefined) throw new ConfigError(at, `"${text}" is not a duration (Go syntax, e.g. "2160h", "720h0m0s", "90s")`);
  return ms;
}

/** Secret names double as SDS names and directory names: keep them to DNS-label-like text. */
export function dnsLabelName(v: unknown, at: string): string {
  const s = str(v, at);
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(s)) {
    throw new ConfigError(at, `"${s}" must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`);
  }
  return s;
}

function checkDnsName(name: string, at: string): void {
  const body = name.startsWith('*.') ? name.slice(2) : name;
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  if (name.length > 253 || !body.split('.').every((l) => label.test(l))) {
    throw new ConfigError(at, `"${name}" is not a DNS name (a wildcard is allowed only as the whole first label, "*.example.com")`);
  }
}
