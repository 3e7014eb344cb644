/**
 * Distinguished names for subjects, in cert-manager's shape (`spec.subject` plus
 * `commonName`), or as an RFC 4514-style string ("CN=example, O=Example Org").
 */
import { checkSubjectAttributeLength, normalizeCountry, SUBJECT_UPPER_BOUNDS } from './certificate-profile.js';
import { PkiError } from './errors.js';
import { bytesOf, children, isSingleElement, oid, readElement, sequence, setOf, tlv, TAG } from './der.js';
import { x509 } from './x509.js';

/** cert-manager's `spec.subject` fields, plus `commonName`. */
export interface DistinguishedName {
  commonName?: string;
  organizations?: string[];
  organizationalUnits?: string[];
  countries?: string[];
  provinces?: string[];
  localities?: string[];
  streetAddresses?: string[];
  postalCodes?: string[];
  serialNumber?: string;
}

/** The DER encoding of a Name, kept byte for byte (for example a CSR's subject). */
export interface EncodedName {
  der: Uint8Array;
}

/**
 * A structured name, a DN string parsed by @peculiar/x509 (attribute order kept,
 * as @peculiar/x509 and OpenSSL print it), or an already encoded Name.
 */
export type SubjectInput = DistinguishedName | EncodedName | string;

// Go's pkix.Name.ToRDNSequence order, which cert-manager inherits.
const ATTRIBUTES: ReadonlyArray<{ field: keyof DistinguishedName; oid: string; printableOnly?: boolean }> = [
  { field: 'countries', oid: '2.5.4.6', printableOnly: true },
  { field: 'provinces', oid: '2.5.4.8' },
  { field: 'localities', oid: '2.5.4.7' },
  { field: 'streetAddresses', oid: '2.5.4.9' },
  { field: 'postalCodes', oid: '2.5.4.17' },
  { field: 'organizations', oid: '2.5.4.10' },
  { field: 'organizationalUnits', oid: '2.5.4.11' },
  { field: 'commonName', oid: '2.5.4.3' },
  { field: 'serialNumber', oid: '2.5.4.5', printableOnly: true },
];

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function directoryString(value: string, printableOnly: boolean, field: string): Buffer {
  if (value === '') throw new PkiError('INVALID_ARGUMENT', `subject ${field} must not be empty`);
  if (PRINTABLE.test(value)) return tlv(TAG.PRINTABLE_STRING, Buffer.from(value, 'latin1'));
  if (printableOnly) {
    throw new PkiError('INVALID_ARGUMENT', `subject ${field} may only contain PrintableString characters`);
  }
  return tlv(TAG.UTF8_STRING, Buffer.from(value, 'utf8'));
}

/**
 * DER Name. A structured name has one RDN per value, each value within its RFC 5280
 * upper bound and countries upper-cased; an empty object gives an empty Name. A DN
 * string or encoded Name keeps its attributes, with each multi-valued RDN written as
 * DER asks (a SET OF sorted by encoding).
 */
export function encodeName(subject: SubjectInput): Buffer {
  if (typeof subject === 'string') return encodeNameString(subject);
  if ('der' in subject) {
    const der = Buffer.from(subject.der);
    if (der[0] !== TAG.SEQUENCE || !isSingleElement(der)) {
      throw new PkiError('INVALID_ARGUMENT', 'subject.der is not a DER Name');
    }
    return sortedRdns(der);
  }
  const rdns: Buffer[] = [];
  for (const attr of ATTRIBUTES) {
    const raw = subject[attr.field];
    if (raw === undefined) continue;
    const values = Array.isArray(raw) ? raw : [raw];
    for (const value of values) {
      if (typeof value !== 'string') {
        throw new PkiError('INVALID_ARGUMENT', `subject ${attr.field} must be a string or a list of strings`);
      }
      let text = value;
      if (attr.field === 'countries') text = normalizeCountry(value);
      else if (Object.hasOwn(SUBJECT_UPPER_BOUNDS, attr.field)) checkSubjectAttributeLength(attr.field, value);
      rdns.push(setOf([sequence(oid(attr.oid), directoryString(text, attr.printableOnly === true, attr.field))]));
    }
  }
  return sequence(...rdns);
}

const stringNameCache = new Map<string, Buffer>();

function encodeNameString(dn: string): Buffer {
  const cached = stringNameCache.get(dn);
  if (cached) return cached;
  let der: Buffer;
  try {
    der = sortedRdns(Buffer.from(new x509.Name(dn).toArrayBuffer()));
  } catch (err) {
    throw new PkiError('INVALID_ARGUMENT', 'subject DN string could not be parsed', { cause: err });
  }
  if (stringNameCache.size < 1000) stringNameCache.set(dn, der);
  return der;
}

/**
 * The Name with every multi-valued RDN's members sorted by their encodings (X.690
 * 11.6: a DER SET OF is sorted; @peculiar/x509 and hand-made DER keep the given order,
 * which strict parsers such as Python's cryptography refuse). Single-valued RDNs and
 * the RDN order are kept.
 */
export function sortedRdns(name: Buffer): Buffer {
  let rdns: ReturnType<typeof children>;
  try {
    rdns = children(name, readElement(name, 0));
  } catch (err) {
    throw new PkiError('INVALID_ARGUMENT', 'subject is not a DER Name', { cause: err });
  }
  if (rdns.every((rdn) => children(name, rdn).length < 2)) return name;
  return sequence(
    ...rdns.map((rdn) => (rdn.tag === TAG.SET ? setOf(children(name, rdn).map((atv) => bytesOf(name, atv))) : bytesOf(name, rdn))),
  );
}

/** True when a DER Name has no RDNs. */
export function isEmptyName(der: Uint8Array): boolean {
  return der.length === 2 && der[0] === TAG.SEQUENCE && der[1] === 0;
}
