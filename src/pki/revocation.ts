/**
 * The revocation material Envoy takes beside a certificate or a CA bundle, checked the
 * way Envoy would check it so that a bad one is refused at the store's door (a NACK in
 * Envoy would keep the old context, and nothing would say why):
 * - a CRL (validation context `crl`): PEM `X509 CRL` blocks, each signed by a CA of the
 *   bundle ("a CRL without a CA" is a NACK);
 * - an OCSP staple (`ocsp_staple`): a DER OCSPResponse, status successful, a basic
 *   response with exactly one SingleResponse, for the leaf's serial number.
 */
import { verify, X509Certificate } from 'node:crypto';
import { readCertificateFields } from './certificate-fields.js';
import { children, contentOf, bytesOf, readElement, readOid, TAG, type DerElement } from './der.js';
import { PkiError } from './errors.js';
import { parsePemBlocks } from './pem.js';
import { SIGNATURE_HASHES } from './signing.js';

const OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';

export interface CheckedCrls {
  count: number;
  warnings: string[];
}

/** Each CRL decodes and is signed by one of `caDers`; an out-of-date CRL is a warning. */
export function checkCrls(crlPem: string, caDers: readonly Uint8Array[], now: Date): CheckedCrls {
  let blocks;
  try {
    blocks = parsePemBlocks(crlPem);
  } catch (err) {
    throw new PkiError('CRL_INVALID', `CRL: ${(err as Error).message}`);
  }
  const crls = blocks.filter((b) => b.label === 'X509 CRL');
  if (crls.length === 0 || crls.length !== blocks.length) throw new PkiError('CRL_INVALID', 'CRL: expected only "X509 CRL" PEM blocks');
  // Candidates by name first (the CRL's issuer is its CA's subject, byte for byte in
  // practice): a large bundle costs one signature check per CRL, not one per CA.
  const cas = caDers.map((der) => ({ der, subject: readCertificateFields(der).subject }));
  const warnings: string[] = [];
  crls.forEach((block, i) => {
    const label = `CRL ${i + 1}`;
    const der = block.der;
    let signed: { tbs: Buffer; hash: string | null; signature: Buffer; issuer: Buffer; nextUpdate: Date | undefined };
    try {
      signed = readCrl(der);
    } catch (err) {
      throw new PkiError('CRL_INVALID', `${label} does not decode: ${(err as Error).message}`);
    }
    const byName = cas.filter((ca) => ca.subject.equals(signed.issuer));
    const issuer = (byName.length > 0 ? byName : cas)
      .map((ca) => new X509Certificate(ca.der))
      .find((ca) => {
        try {
          return verify(signed.hash, signed.tbs, { key: ca.publicKey, dsaEncoding: 'der' }, signed.signature);
        } catch {
          return false;
        }
      });
    if (!issuer) throw new PkiError('CRL_INVALID', `${label} is not signed by a CA of the bundle (Envoy refuses a CRL without its CA)`);
    if (signed.nextUpdate && signed.nextUpdate < now) {
      warnings.push(
        `${label} (issuer ${issuer.subject.replace(/\n/g, ', ')}) is past its nextUpdate ${signed.nextUpdate.toISOString()}: peers it covers fail verification`,
      );
    }
  });
  return { count: crls.length, warnings };
}

function readCrl(der: Buffer): { tbs: Buffer; hash: string | null; signature: Buffer; issuer: Buffer; nextUpdate: Date | undefined } {
  const [tbs, algorithm, signature] = children(der, readElement(der, 0));
  if (tbs?.tag !== TAG.SEQUENCE || algorithm?.tag !== TAG.SEQUENCE || signature?.tag !== TAG.BIT_STRING)
    throw new Error('not a CertificateList');
  const hash = SIGNATURE_HASHES[algorithmOid(der, algorithm)];
  if (hash === undefined) throw new Error(`signature algorithm ${algorithmOid(der, algorithm)} is not supported`);
  // TBSCertList: version?, signature, issuer, thisUpdate, nextUpdate?, ...
  const fields = children(der, tbs);
  // The issuer Name is the first SEQUENCE after the signature AlgorithmIdentifier.
  const sequences = fields.filter((f) => f.tag === TAG.SEQUENCE);
  const issuer = sequences[1];
  if (!issuer) throw new Error('TBSCertList has no issuer');
  const times = fields.filter((f) => f.tag === TAG.UTC_TIME || f.tag === TAG.GENERALIZED_TIME);
  const next = times[1];
  return {
    tbs: bytesOf(der, tbs),
    hash,
    signature: contentOf(der, signature).subarray(1),
    issuer: bytesOf(der, issuer),
    nextUpdate: next ? readTime(der, next) : undefined,
  };
}

export interface CheckedOcspStaple {
  warnings: string[];
}

/** The staple is a successful basic OCSP response about exactly this serial number (hex, upper case). */
export function checkOcspStaple(staple: Uint8Array, leafSerialHex: string, now: Date): CheckedOcspStaple {
  const fail = (why: string): never => {
    throw new PkiError('OCSP_INVALID', `OCSP staple ${why}`);
  };
  let single: { serial: string; nextUpdate: Date | undefined };
  try {
    const der = Buffer.from(staple.buffer, staple.byteOffset, staple.byteLength);
    const root = readElement(der, 0);
    if (root.end !== der.length || root.tag !== TAG.SEQUENCE) return fail('is not one DER OCSPResponse');
    const [status, responseBytes] = children(der, root);
    if (status?.tag !== 0x0a) return fail('has no responseStatus');
    const code = contentOf(der, status)[0];
    if (code !== 0) return fail(`has responseStatus ${code} (not successful)`);
    if (responseBytes?.tag !== 0xa0) return fail('has no responseBytes');
    const [rb] = children(der, responseBytes);
    const [type, octets] = rb ? children(der, rb) : [];
    if (type?.tag !== TAG.OID || readOid(contentOf(der, type)) !== OCSP_BASIC || octets?.tag !== TAG.OCTET_STRING)
      return fail('is not a basic OCSP response');
    const basic = contentOf(der, octets);
    const [tbs] = children(basic, readElement(basic, 0));
    if (tbs?.tag !== TAG.SEQUENCE) return fail('has no ResponseData');
    const responses = children(basic, tbs).find((f) => f.tag === TAG.SEQUENCE);
    const list = responses ? children(basic, responses) : [];
    if (list.length !== 1) return fail(`holds ${list.length} responses; Envoy takes exactly one`);
    single = readSingle(basic, list[0]!);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    return fail(`does not decode: ${(err as Error).message}`);
  }
  if (single.serial !== leafSerialHex) fail(`is for serial ${single.serial}, not the certificate's ${leafSerialHex}`);
  const warnings: string[] = [];
  if (single.nextUpdate && single.nextUpdate < now)
    warnings.push(`the OCSP staple expired at ${single.nextUpdate.toISOString()}; Envoy does not staple an expired response`);
  return { warnings };
}

function readSingle(der: Buffer, single: DerElement): { serial: string; nextUpdate: Date | undefined } {
  const [certId, , , next] = children(der, single);
  const idFields = certId ? children(der, certId) : [];
  const serial = idFields[3];
  if (serial?.tag !== TAG.INTEGER) throw new Error('CertID has no serialNumber');
  let hex = contentOf(der, serial)
    .toString('hex')
    .toUpperCase()
    .replace(/^(00)+(?=.)/, '');
  if (hex.length % 2 === 1) hex = `0${hex}`;
  // nextUpdate is [0] EXPLICIT GeneralizedTime, after thisUpdate.
  const inner = next?.tag === 0xa0 ? children(der, next)[0] : undefined;
  return { serial: hex, nextUpdate: inner ? readTime(der, inner) : undefined };
}

function algorithmOid(der: Buffer, algorithm: DerElement): string {
  const [o] = children(der, algorithm);
  if (o?.tag !== TAG.OID) throw new Error('AlgorithmIdentifier has no OID');
  return readOid(contentOf(der, o));
}

function readTime(der: Buffer, el: DerElement): Date {
  const text = contentOf(der, el).toString('latin1');
  const m = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw new Error(`bad time ${text}`);
  let year = Number(m[1]);
  if (m[1]!.length === 2) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
