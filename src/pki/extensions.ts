/**
 * X.509 v3 extensions we emit, with cert-manager's usage names, and the
 * conversions between those names and the encoded forms.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  children,
  contentOf,
  contextTag,
  derBooleanTrue,
  octetString,
  oid,
  readElement,
  sequence,
  smallInteger,
  subjectPublicKeyBits,
  tlv,
} from './der.js';
import { checkEmailAddress, checkUri } from './certificate-profile.js';
import { PkiError } from './errors.js';

/** cert-manager key usage names and their KeyUsage bit (RFC 5280 4.2.1.3). */
export const KEY_USAGE_BITS = {
  signing: 0,
  'digital signature': 0,
  'content commitment': 1,
  'key encipherment': 2,
  'data encipherment': 3,
  'key agreement': 4,
  'cert sign': 5,
  'crl sign': 6,
  'encipher only': 7,
  'decipher only': 8,
} as const;
export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

/** cert-manager extended key usage names and their OIDs. */
export const EXT_KEY_USAGE_OIDS = {
  any: '2.5.29.37.0',
  'server auth': '1.3.6.1.5.5.7.3.1',
  'client auth': '1.3.6.1.5.5.7.3.2',
  'code signing': '1.3.6.1.5.5.7.3.3',
  'email protection': '1.3.6.1.5.5.7.3.4',
  's/mime': '1.3.6.1.5.5.7.3.4',
  'ipsec end system': '1.3.6.1.5.5.7.3.5',
  'ipsec tunnel': '1.3.6.1.5.5.7.3.6',
  'ipsec user': '1.3.6.1.5.5.7.3.7',
  timestamping: '1.3.6.1.5.5.7.3.8',
  'ocsp signing': '1.3.6.1.5.5.7.3.9',
  'microsoft sgc': '1.3.6.1.4.1.311.10.3.3',
  'netscape sgc': '2.16.840.1.113730.4.1',
} as const;
export type ExtKeyUsageName = keyof typeof EXT_KEY_USAGE_OIDS;

const isKeyUsage = (u: string): u is KeyUsageName => Object.hasOwn(KEY_USAGE_BITS, u);
const isExtKeyUsage = (u: string): u is ExtKeyUsageName => Object.hasOwn(EXT_KEY_USAGE_OIDS, u);

/** Splits a cert-manager `usages` list into key usages and extended key usages. */
export function splitUsages(usages: readonly string[]): { keyUsages: KeyUsageName[]; extKeyUsages: ExtKeyUsageName[] } {
  const keyUsages: KeyUsageName[] = [];
  const extKeyUsages: ExtKeyUsageName[] = [];
  for (const u of usages) {
    if (isKeyUsage(u)) keyUsages.push(u);
    else if (isExtKeyUsage(u)) extKeyUsages.push(u);
    else throw new PkiError('INVALID_ARGUMENT', `unknown usage ${JSON.stringify(u)}`);
  }
  return { keyUsages, extKeyUsages };
}

/** Names for the bits of a KeyUsage value (canonical names; 'signing' is not repeated). */
export function keyUsageNames(flags: number): KeyUsageName[] {
  const names: KeyUsageName[] = [];
  for (const [name, bit] of Object.entries(KEY_USAGE_BITS)) {
    if (name === 'signing') continue;
    // @peculiar/x509 KeyUsageFlags: digitalSignature = 1 << 0 ... decipherOnly = 1 << 8.
    if (flags & (1 << bit)) names.push(name as KeyUsageName);
  }
  return names;
}

/** Name for an EKU OID, or the OID itself when it has none. */
export function extKeyUsageName(usageOid: string): string {
  if (usageOid === EXT_KEY_USAGE_OIDS['email protection']) return 'email protection';
  for (const [name, value] of Object.entries(EXT_KEY_USAGE_OIDS)) if (value === usageOid) return name;
  return usageOid;
}

// ---------------------------------------------------------------- encoding

function extension(extnId: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(oid(extnId), derBooleanTrue(), octetString(value)) : sequence(oid(extnId), octetString(value));
}

/** keyUsage, critical (as cert-manager and the CA/B baseline do). */
export function keyUsageExtension(usages: readonly string[]): Buffer | undefined {
  let flags = 0;
  for (const u of usages) {
    if (!isKeyUsage(u)) throw new PkiError('INVALID_ARGUMENT', `unknown key usage ${JSON.stringify(u)}`);
    flags |= 1 << KEY_USAGE_BITS[u];
  }
  if (flags === 0) return undefined;
  // DER named bit list: bit 0 is the MSB of the first byte; trailing zero bits dropped.
  const highest = 31 - Math.clz32(flags);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (let bit = 0; bit <= highest; bit++) {
    if (flags & (1 << bit)) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  }
  return extension('2.5.29.15', true, bitString(bytes, 7 - (highest & 7)));
}

/** extKeyUsage, not critical. */
export function extKeyUsageExtension(usages: readonly string[]): Buffer | undefined {
  const oids: string[] = [];
  for (const u of usages) {
    if (!isExtKeyUsage(u)) throw new PkiError('INVALID_ARGUMENT', `unknown extended key usage ${JSON.stringify(u)}`);
    const o = EXT_KEY_USAGE_OIDS[u];
    if (!oids.includes(o)) oids.push(o);
  }
  if (oids.length === 0) return undefined;
  return extension('2.5.29.37', false, sequence(...oids.map((o) => oid(o))));
}

/** basicConstraints, critical; cA omitted (DER default FALSE) for leaves. */
export function basicConstraintsExtension(isCA: boolean, maxPathLength?: number): Buffer {
  if (!isCA) return extension('2.5.29.19', true, sequence());
  if (maxPathLength === undefined) return extension('2.5.29.19', true, sequence(derBooleanTrue()));
  return extension('2.5.29.19', true, sequence(derBooleanTrue(), smallInteger(maxPathLength)));
}

export interface SubjectAltNames {
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  uris?: readonly string[];
  emailAddresses?: readonly string[];
}

const IA5 = /^[\x21-\x7e]+$/;

/**
 * subjectAltName; critical when the subject is empty (RFC 5280 4.2.1.6).
 * Returns undefined when there are no names.
 */
export function subjectAltNameExtension(names: SubjectAltNames, subjectIsEmpty: boolean): Buffer | undefined {
  const general: Buffer[] = [];
  for (const email of names.emailAddresses ?? []) {
    checkEmailAddress(email);
    general.push(contextTag(1, Buffer.from(email, 'latin1'), false));
  }
  for (const dns of names.dnsNames ?? []) {
    if (!IA5.test(dns)) throw new PkiError('INVALID_ARGUMENT', `invalid DNS name ${JSON.stringify(dns)}`);
    general.push(contextTag(2, Buffer.from(dns, 'latin1'), false));
  }
  for (const uri of names.uris ?? []) {
    checkUri(uri);
    general.push(contextTag(6, Buffer.from(uri, 'latin1'), false));
  }
  for (const ip of names.ipAddresses ?? []) general.push(contextTag(7, encodeIpAddress(ip), false));
  if (general.length === 0) return undefined;
  return extension('2.5.29.17', subjectIsEmpty, sequence(...general));
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
}

export function subjectKeyIdentifierExtension(keyId: Uint8Array): Buffer {
  return extension('2.5.29.14', false, octetString(keyId));
}

export function authorityKeyIdentifierExtension(keyId: Uint8Array): Buffer {
  return extension('2.5.29.35', false, sequence(contextTag(0, keyId, false)));
}

/** The extensions field of a TBSCertificate, [3] EXPLICIT. */
export function extensionsField(extensions: readonly Uint8Array[]): Buffer {
  return contextTag(3, [sequence(...extensions)], true);
}

/** Attributes of a CertificationRequestInfo, [0] IMPLICIT SET, with extensionRequest if any. */
export function csrAttributesField(extensions: readonly Uint8Array[]): Buffer {
  if (extensions.length === 0) return contextTag(0, [], true);
  const extensionRequest = sequence(oid('1.2.840.113549.1.9.14'), tlv(0x31, [sequence(...extensions)]));
  return contextTag(0, [extensionRequest], true);
}

export interface DecodedSubjectAltNames {
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
  emailAddresses: string[];
}

/**
 * The names of a subjectAltName extension value (the GeneralNames DER). Name
 * types other than email, DNS, URI and IP are skipped. Throws a plain Error on
 * malformed DER.
 */
export function decodeSubjectAltNames(generalNames: Uint8Array): DecodedSubjectAltNames {
  const out: DecodedSubjectAltNames = { dnsNames: [], ipAddresses: [], uris: [], emailAddresses: [] };
  const outer = readElement(generalNames, 0);
  for (const el of children(generalNames, outer)) {
    const value = contentOf(generalNames, el);
    switch (el.tag) {
      case 0x81:
        out.emailAddresses.push(value.toString('latin1'));
        break;
      case 0x82:
        out.dnsNames.push(value.toString('latin1'));
        break;
      case 0x86:
        out.uris.push(value.toString('latin1'));
        break;
      case 0x87:
        out.ipAddresses.push(formatIpAddress(value));
        break;
      default:
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------- IP addresses

/** Text form of 4 or 16 address bytes (RFC 5952 for IPv6); other lengths as hex. */
export function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) return Buffer.from(bytes).toString('hex');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  }
  // Longest run of two or more zero groups (the first on a tie) becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Canonical text form (RFC 5952 for IPv6) of an IP address; throws INVALID_ARGUMENT if invalid. */
export function canonicalIpAddress(ip: string): string {
  return formatIpAddress(encodeIpAddress(ip));
}

/** 4 or 16 bytes for an IPv4 / IPv6 address; throws INVALID_ARGUMENT otherwise. */
export function encodeIpAddress(ip: string): Buffer {
  const version = typeof ip === 'string' && !ip.includes('%') ? isIP(ip) : 0;
  if (version === 4) return Buffer.from(ip.split('.').map((p) => Number(p)));
  if (version === 6) return ipv6Bytes(ip);
  throw new PkiError('INVALID_ARGUMENT', `invalid IP address ${JSON.stringify(ip)}`);
}

function ipv6Bytes(ip: string): Buffer {
  // Already validated by isIP. A trailing dotted quad becomes two hex groups.
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.slice(1).map((p) => Number(p));
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const [head = '', rest] = text.split('::');
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const zeros = new Array<number>(8 - left.length - right.length).fill(0);
  const out = Buffer.alloc(16);
  [...left, ...zeros, ...right].forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
