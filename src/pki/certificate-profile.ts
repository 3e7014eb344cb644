/**
 * The profile rules every certificate the toolkit writes follows, and which the
 * issuance config checks with the same functions before anything is issued: what
 * passes here is issued, what would fail issuance is refused when the config is read.
 *
 * Sources (the lints zlint runs for each, see test/pki/zlint.test.ts):
 * - key usages by key type: RFC 3279 2.3.1 (RSA), RFC 5480 3 and RFC 8813 3 (ECDSA),
 *   RFC 8410 5 (Ed25519); 'cert sign' only in a CA (RFC 5280 4.2.1.3);
 * - subject attribute upper bounds: RFC 5280 appendix A.1 (ub-*) and X.520, counted in
 *   characters (code points), as X.520 counts them and zlint checks them;
 * - countries: ISO 3166-1 alpha-2, upper case (X.520 CountryName);
 * - URIs and email addresses in subjectAltName: IA5String, RFC 3986 and RFC 5321 syntax.
 */
import { PkiError } from './errors.js';
import type { KeyUsageName } from './extensions.js';

export type ProfileKeyAlgorithm = 'RSA' | 'ECDSA' | 'Ed25519';

/**
 * Key usages when none are asked for. A leaf: 'digital signature', plus 'key
 * encipherment' for RSA (cert-manager's default). A CA: 'digital signature', 'cert
 * sign' and 'crl sign', never 'key encipherment' (RFC 3279: SHOULD NOT with cert sign).
 */
export function defaultKeyUsages(algorithm: ProfileKeyAlgorithm, isCA: boolean): KeyUsageName[] {
  if (isCA) return ['digital signature', 'cert sign', 'crl sign'];
  return algorithm === 'RSA' ? ['digital signature', 'key encipherment'] : ['digital signature'];
}

/** The usages a CA always carries, added to the ones asked for. */
export const CA_KEY_USAGES: readonly KeyUsageName[] = ['cert sign', 'crl sign'];

// 'signing' is cert-manager's alias of 'digital signature'.
const canonical = (u: KeyUsageName): KeyUsageName => (u === 'signing' ? 'digital signature' : u);

/** What each key type may carry, leaf and CA ('cert sign' and 'crl sign' are CA-only for every type). */
const ALLOWED: Record<ProfileKeyAlgorithm, { leaf: readonly KeyUsageName[]; ca: readonly KeyUsageName[]; why: string }> = {
  RSA: {
    leaf: ['digital signature', 'content commitment', 'key encipherment', 'data encipherment'],
    ca: ['digital signature', 'content commitment', 'cert sign', 'crl sign'],
    why: 'RFC 3279 2.3.1',
  },
  ECDSA: {
    leaf: ['digital signature', 'content commitment', 'key agreement', 'encipher only', 'decipher only'],
    ca: ['digital signature', 'content commitment', 'cert sign', 'crl sign'],
    why: 'RFC 5480 3 and RFC 8813 3',
  },
  Ed25519: {
    leaf: ['digital signature', 'content commitment'],
    ca: ['digital signature', 'content commitment', 'cert sign', 'crl sign'],
    why: 'RFC 8410 5',
  },
};

/**
 * Throws INVALID_ARGUMENT naming the usage and the rule when `keyUsages` (the final
 * list, CA usages included) does not fit a key of `algorithm`.
 */
export function checkKeyUsages(algorithm: ProfileKeyAlgorithm, isCA: boolean, keyUsages: readonly KeyUsageName[]): void {
  const used = new Set(keyUsages.map(canonical));
  const rule = ALLOWED[algorithm];
  const allowed = isCA ? rule.ca : rule.leaf;
  const kind = isCA ? 'CA' : 'leaf';
  for (const u of used) {
    if (allowed.includes(u)) continue;
    if ((u === 'cert sign' || u === 'crl sign') && !isCA) {
      throw new PkiError('INVALID_ARGUMENT', `usage "${u}" needs isCA: true (RFC 5280 4.2.1.3)`);
    }
    if (algorithm === 'RSA' && isCA && (u === 'key encipherment' || u === 'data encipherment')) {
      throw new PkiError('INVALID_ARGUMENT', `usage "${u}" is not allowed in an RSA CA certificate (RFC 3279 2.3.1: not with cert sign)`);
    }
    throw new PkiError(
      'INVALID_ARGUMENT',
      `usage "${u}" is not allowed with an ${algorithm} key in a ${kind} certificate (${rule.why}; allowed: ${allowed.join(', ')})`,
    );
  }
  if ((used.has('encipher only') || used.has('decipher only')) && !used.has('key agreement')) {
    throw new PkiError('INVALID_ARGUMENT', 'usages "encipher only" and "decipher only" need "key agreement" (RFC 5280 4.2.1.3)');
  }
}

// ---------------------------------------------------------------- subject attributes

/** Upper bounds in characters (RFC 5280 A.1 ub-* values; street address from X.520). */
export const SUBJECT_UPPER_BOUNDS = {
  commonName: 64,
  organizations: 64,
  organizationalUnits: 64,
  localities: 128,
  provinces: 128,
  streetAddresses: 128,
  postalCodes: 16,
  serialNumber: 64,
} as const;

/** Length in characters (Unicode code points), not UTF-16 units. */
export function characterCount(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

export function checkSubjectAttributeLength(field: keyof typeof SUBJECT_UPPER_BOUNDS, value: string): void {
  const max = SUBJECT_UPPER_BOUNDS[field];
  const length = characterCount(value);
  if (length > max)
    throw new PkiError(
      'INVALID_ARGUMENT',
      `subject ${field} "${value.slice(0, 20)}…" is ${length} characters; at most ${max} are allowed (RFC 5280 upper bound)`,
    );
}

// ISO 3166-1 alpha-2, officially assigned codes.
const ISO_3166 = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR ' +
    'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP ' +
    'KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT ' +
    'MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG ' +
    'UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW'
  ).split(' '),
);

/** The country code upper-cased; INVALID_ARGUMENT when it is not an ISO 3166-1 alpha-2 code. */
export function normalizeCountry(value: string): string {
  const code = value.toUpperCase();
  if (!/^[A-Z]{2}$/.test(code) || !ISO_3166.has(code)) {
    throw new PkiError('INVALID_ARGUMENT', `subject country "${value}" is not an ISO 3166-1 alpha-2 code (such as DE, US, FR)`);
  }
  return code;
}

// ---------------------------------------------------------------- subjectAltName values

const DNS_HOST = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
// RFC 3986 characters: unreserved, reserved, and '%' (escapes checked apart).
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;

/** INVALID_ARGUMENT unless `uri` is an absolute RFC 3986 URI in ASCII with, when it has an authority, a DNS name or IP host. */
export function checkUri(uri: string): void {
  const bad = (why: string) => new PkiError('INVALID_ARGUMENT', `URI ${JSON.stringify(uri)} ${why}`);
  if (!URI_CHARS.test(uri)) throw bad('must be ASCII without spaces (percent-encode other characters)');
  if (/%(?![0-9A-Fa-f]{2})/.test(uri)) throw bad('has a malformed percent-escape');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/.exec(uri);
  if (!m) throw bad('is not absolute (it needs a scheme, as in spiffe://example.org/workload)');
  const rest = m[2]!;
  if (rest === '') throw bad('has nothing after its scheme');
  if (rest.startsWith('//')) {
    const authority = rest.slice(2).split(/[/?#]/, 1)[0]!;
    const host = authority.replace(/^[^@]*@/, '').replace(/:\d*$/, '');
    const ip = /^\[[0-9A-Fa-f:.]+\]$/.test(host) || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
    if (!ip && !DNS_HOST.test(host)) throw bad('needs a DNS name or IP address as its host');
  }
}

// RFC 5322 dot-atom local part.
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** INVALID_ARGUMENT unless `email` is local@domain in ASCII (RFC 5280 4.2.1.6: an RFC 5321 Mailbox). */
export function checkEmailAddress(email: string): void {
  const at = email.lastIndexOf('@');
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (at <= 0 || characterCount(local) > 64 || !LOCAL_PART.test(local) || !DNS_HOST.test(domain)) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      `email address ${JSON.stringify(email)} must be local@domain in ASCII without spaces (RFC 5321)`,
    );
  }
}
