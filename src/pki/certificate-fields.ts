/**
 * The fields of an X.509 certificate read straight from its DER, internal to
 * the toolkit.
 *
 * Why: @peculiar/x509 takes ~3 ms to parse a certificate and its extensions;
 * the store's door, which sees every secret and every issued certificate, would
 * spend most of its time there. Reading the few fields we need costs tens of
 * microseconds. Callers pair this with node's X509Certificate (OpenSSL), so a
 * certificate is only accepted when OpenSSL parses it too.
 */
import { bytesOf, children, contentOf, readElement, readOid, TAG, type DerElement } from './der.js';

export interface CertificateExtension {
  critical: boolean;
  /** The extnValue content: the DER of the extension's own structure. */
  value: Buffer;
}

export interface CertificateFields {
  /** 1, 2 or 3. */
  version: number;
  /** Uppercase hex without leading zero octets. */
  serialNumber: string;
  /** OID of the outer signatureAlgorithm. */
  signatureAlgorithm: string;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  subjectPublicKeyInfo: Buffer;
  /** By OID. */
  extensions: Map<string, CertificateExtension>;
}

export const EXTENSION = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
} as const;

function expectTag(el: DerElement | undefined, tag: number, what: string): DerElement {
  if (el?.tag !== tag) throw new Error(`DER: ${what} not found`);
  return el;
}

/** Throws a plain Error when the DER does not have a certificate's shape. */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  const outer = readElement(der, 0);
  if (outer.tag !== TAG.SEQUENCE || outer.end !== der.length) throw new Error('DER: not a single SEQUENCE');
  const [tbsEl, sigAlgEl] = children(der, outer);
  const tbs = expectTag(tbsEl, TAG.SEQUENCE, 'tbsCertificate');
  const sigAlg = expectTag(sigAlgEl, TAG.SEQUENCE, 'signatureAlgorithm');
  const fields = children(der, tbs);
  let i = 0;
  let version = 1;
  if (fields[0]?.tag === 0xa0) {
    const [v] = children(der, fields[0]);
    const value = contentOf(der, expectTag(v, TAG.INTEGER, 'version'));
    if (value.length !== 1) throw new Error('DER: bad version');
    version = (value[0] ?? 0) + 1;
    i = 1;
  }
  const serial = contentOf(der, expectTag(fields[i], TAG.INTEGER, 'serialNumber'));
  const issuer = expectTag(fields[i + 2], TAG.SEQUENCE, 'issuer');
  const validity = children(der, expectTag(fields[i + 3], TAG.SEQUENCE, 'validity'));
  const subject = expectTag(fields[i + 4], TAG.SEQUENCE, 'subject');
  const spki = expectTag(fields[i + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const [algOid] = children(der, sigAlg);

  const extensions = new Map<string, CertificateExtension>();
  const extField = fields.slice(i + 6).find((f) => f.tag === 0xa3);
  if (extField) {
    const [list] = children(der, extField);
    for (const ext of children(der, expectTag(list, TAG.SEQUENCE, 'extensions'))) {
      const parts = children(der, ext);
      const id = readOid(contentOf(der, expectTag(parts[0], TAG.OID, 'extnID')));
      const critical = parts.length === 3 && parts[1]?.tag === TAG.BOOLEAN && der[parts[1].contentStart] !== 0;
      const value = contentOf(der, expectTag(parts.at(-1), TAG.OCTET_STRING, 'extnValue'));
      if (extensions.has(id)) throw new Error(`DER: duplicate extension ${id}`);
      extensions.set(id, { critical, value });
    }
  }

  let serialHex = serial
    .toString('hex')
    .toUpperCase()
    .replace(/^(00)+(?=.)/, '');
  if (serialHex.length % 2 === 1) serialHex = `0${serialHex}`;
  return {
    version,
    serialNumber: serialHex,
    signatureAlgorithm: readOid(contentOf(der, expectTag(algOid, TAG.OID, 'algorithm'))),
    issuer: bytesOf(der, issuer),
    subject: bytesOf(der, subject),
    notBefore: readTime(der, validity[0]),
    notAfter: readTime(der, validity[1]),
    subjectPublicKeyInfo: bytesOf(der, spki),
    extensions,
  };
}

function readTime(der: Uint8Array, el: DerElement | undefined): Date {
  const text = el ? contentOf(der, el).toString('latin1') : '';
  let m: RegExpExecArray | null = null;
  let year = 0;
  if (el?.tag === TAG.UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))) {
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (el?.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.\d+)?Z$/.exec(text))) {
    year = Number(m[1]);
  }
  if (!m) throw new Error('DER: bad time');
  const [, , mo = 1, d = 1, h = 0, mi = 0, s = 0] = m.map(Number);
  const date = new Date(0);
  date.setUTCFullYear(year, mo - 1, d); // not Date.UTC: it maps years 0-99 to 1900-1999
  date.setUTCHours(h, mi, s, 0);
  if (Number.isNaN(date.getTime())) throw new Error('DER: bad time');
  return date;
}

// ---------------------------------------------------------------- names

// The short names @peculiar/x509 prints; other attribute types print as OIDs.
const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'E',
  '2.5.4.42': 'G',
  '2.5.4.43': 'I',
  '2.5.4.4': 'SN',
  '2.5.4.12': 'T',
};

function stringValue(der: Uint8Array, el: DerElement): string | undefined {
  const content = contentOf(der, el);
  switch (el.tag) {
    case TAG.UTF8_STRING:
      return content.toString('utf8');
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case 0x14: // TeletexString, read as Latin-1 as most software does
      return content.toString('latin1');
    case 0x1e: // BMPString: UTF-16BE
      return content.length % 2 === 0 ? Buffer.from(content).swap16().toString('utf16le') : undefined;
    case 0x1c: {
      // UniversalString: UTF-32BE
      if (content.length % 4 !== 0) return undefined;
      let out = '';
      for (let i = 0; i < content.length; i += 4) {
        const cp = content.readUInt32BE(i);
        if (cp > 0x10ffff) return undefined;
        out += String.fromCodePoint(cp);
      }
      return out;
    }
    default:
      return undefined;
  }
}

function escapeValue(value: string): string {
  return value
    .replace(/([,+"\\<>;])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/( )$/, '\\$1')
    .replace(/[\r\n\t]/g, (c) => `\\${Buffer.from(c).toString('hex').toUpperCase()}`);
}

/**
 * A DER Name as text, formatted as @peculiar/x509's Name.toString() does
 * ("O=Example, CN=example.com": RDNs in encoded order, joined by ", ").
 */
export function nameToString(name: Uint8Array): string {
  const outer = readElement(name, 0);
  return children(name, outer)
    .map((rdn) =>
      children(name, rdn)
        .map((atv) => {
          const [typeEl, valueEl] = children(name, atv);
          const type = readOid(contentOf(name, expectTag(typeEl, TAG.OID, 'attribute type')));
          if (!valueEl) throw new Error('DER: attribute value not found');
          const text = stringValue(name, valueEl);
          const value = text === undefined ? `#${bytesOf(name, valueEl).toString('hex')}` : escapeValue(text);
          return `${SHORT_NAMES[type] ?? type}=${value}`;
        })
        .join('+'),
    )
    .join(', ');
}

// ---------------------------------------------------------------- extension values

export function readBasicConstraints(value: Uint8Array): { ca: boolean; pathLength?: number } {
  const seq = readElement(value, 0);
  let ca = false;
  let pathLength: number | undefined;
  for (const el of children(value, seq)) {
    if (el.tag === TAG.BOOLEAN) ca = value[el.contentStart] !== 0;
    else if (el.tag === TAG.INTEGER) pathLength = Number.parseInt(contentOf(value, el).toString('hex') || '0', 16);
  }
  return pathLength === undefined ? { ca } : { ca, pathLength };
}

/** KeyUsage as flags: bit n of RFC 5280's list is 1 << n (digitalSignature = 1). */
export function readKeyUsage(value: Uint8Array): number {
  const bits = contentOf(value, expectTag(readElement(value, 0), TAG.BIT_STRING, 'keyUsage'));
  let flags = 0;
  for (let i = 1; i < bits.length && i <= 2; i++) {
    for (let b = 0; b < 8; b++) if ((bits[i] ?? 0) & (0x80 >> b)) flags |= 1 << ((i - 1) * 8 + b);
  }
  return flags;
}

export function readExtKeyUsage(value: Uint8Array): string[] {
  return children(value, readElement(value, 0)).map((el) => readOid(contentOf(value, el)));
}

/** Hex of a subjectKeyIdentifier. */
export function readSubjectKeyIdentifier(value: Uint8Array): string {
  return contentOf(value, expectTag(readElement(value, 0), TAG.OCTET_STRING, 'keyIdentifier')).toString('hex');
}

/** Hex of an authorityKeyIdentifier's keyIdentifier, when present. */
export function readAuthorityKeyIdentifier(value: Uint8Array): string | undefined {
  const keyId = children(value, readElement(value, 0)).find((el) => el.tag === 0x80);
  return keyId ? contentOf(value, keyId).toString('hex') : undefined;
}
