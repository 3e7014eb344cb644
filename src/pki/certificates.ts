/**
 * Creating certificates (self-signed or signed by a CA key pair) and reading
 * them from PEM/DER.
 *
 * Creation writes the DER itself (./der.ts) and signs with node:crypto on the
 * thread pool. Building through @peculiar/x509's ASN.1 schema costs ~3 ms of
 * main-thread JavaScript per certificate (about 250 certificates/second with key
 * generation, measured); this path costs a small fraction of that and issues
 * well over 1,000 ECDSA P-256 leaves per second, key generation included, on two
 * cores. The @peculiar/x509 view of the result is parsed lazily, on first access.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import {
  EXTENSION,
  nameToString,
  readBasicConstraints,
  readCertificateFields,
  readKeyUsage,
  readSubjectKeyIdentifier,
  type CertificateFields,
} from './certificate-fields.js';
import { CA_KEY_USAGES, checkKeyUsages, defaultKeyUsages } from './certificate-profile.js';
import { bitString, contextTag, isSingleElement, positiveInteger, sequence, smallInteger, time } from './der.js';
import { PkiError } from './errors.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  extensionsField,
  extKeyUsageExtension,
  keyIdentifier,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  type ExtKeyUsageName,
  type KeyUsageName,
  type SubjectAltNames,
} from './extensions.js';
import { describeKey, parsePrivateKeyPem, publicKeyDer, publicKeyFromDer, type KeyDescription } from './keys.js';
import { encodeName, isEmptyName, type SubjectInput } from './names.js';
import { describeLabel, parsePemBlocks, pemText, toPem, type ParsePemOptions } from './pem.js';
import { signAsync, signatureAlgorithmFor, type SignatureAlgorithm } from './signing.js';
import { x509 } from './x509.js';

/**
 * A CA that signs: its certificate and private key. Treat it as immutable: the
 * checks and derived data (issuer name bytes, key identifier, signature
 * algorithm) are computed once per certificate object and cached.
 */
export interface Issuer {
  certificate: x509.X509Certificate;
  privateKey: KeyObject;
}

/** What goes into a certificate, in cert-manager's vocabulary. */
export interface CertificateTemplate extends SubjectAltNames {
  /** Structured, DN string, or the DER bytes of a Name (`{ der }`). Default: empty. */
  subject?: SubjectInput;
  /** Positive, at most 20 octets; hex string or bigint. Default: 16 random octets (126 random bits). */
  serialNumber?: string | bigint;
  /** Default: now. */
  notBefore?: Date;
  notAfter: Date;
  isCA?: boolean;
  /** pathLenConstraint of a CA; omitted means unlimited. */
  maxPathLength?: number;
  /**
   * Default: 'digital signature', plus 'key encipherment' for an RSA leaf.
   * 'cert sign' and 'crl sign' are always added for a CA. Checked against the
   * subject's key type (./certificate-profile.ts).
   */
  keyUsages?: readonly KeyUsageName[];
  /** Default: none. */
  extKeyUsages?: readonly ExtKeyUsageName[];
}

export type CreateCertificateParams = CertificateTemplate &
  (
    | { issuer: Issuer; /** The subject's key (public, or private: its public half is used). */ publicKey: KeyObject }
    | { issuer: 'self'; /** Signs, and its public half is certified. */ privateKey: KeyObject }
  );

export interface IssuedCertificate {
  readonly pem: string;
  readonly der: Buffer;
  /** Parsed on first access. */
  readonly certificate: x509.X509Certificate;
}

class Issued implements IssuedCertificate {
  readonly pem: string;
  #certificate: x509.X509Certificate | undefined;

  constructor(readonly der: Buffer) {
    this.pem = toPem('CERTIFICATE', der);
  }

  get certificate(): x509.X509Certificate {
    this.#certificate ??= new x509.X509Certificate(this.der);
    return this.#certificate;
  }
}

interface Signer {
  issuerName: Buffer;
  keyId: Buffer;
  privateKey: KeyObject;
  algorithm: SignatureAlgorithm;
  pathLength: number | undefined;
}

const KEY_CERT_SIGN = 1 << 5;

const signers = new WeakMap<x509.X509Certificate, { privateKey: KeyObject; signer: Signer }>();

/**
 * Checks an issuer once (CA flag, 'cert sign' usage when key usage is present,
 * key matches certificate) and caches what signing needs. Throws NOT_CA or
 * KEY_MISMATCH. Called by createCertificate; call it early to fail at load time.
 */
export function checkIssuer(issuer: Issuer): void {
  signerFor(issuer);
}

function signerFor(issuer: Issuer): Signer {
  const { certificate, privateKey } = issuer;
  const hit = signers.get(certificate);
  if (hit && hit.privateKey === privateKey) return hit.signer;

  let fields: CertificateFields;
  let bc: { ca: boolean; pathLength?: number } | undefined;
  let keyUsage: number | undefined;
  let subjectKeyId: string | undefined;
  let certSpki: Buffer;
  let name: string;
  try {
    fields = readCertificateFields(new Uint8Array(certificate.rawData));
    name = nameToString(fields.subject) || '(no subject)';
    certSpki = publicKeyDer(publicKeyFromDer(fields.subjectPublicKeyInfo));
    const ext = (oid: string): Buffer | undefined => fields.extensions.get(oid)?.value;
    const bcValue = ext(EXTENSION.basicConstraints);
    const kuValue = ext(EXTENSION.keyUsage);
    const skiValue = ext(EXTENSION.subjectKeyIdentifier);
    bc = bcValue && readBasicConstraints(bcValue);
    keyUsage = kuValue && readKeyUsage(kuValue);
    subjectKeyId = skiValue && readSubjectKeyIdentifier(skiValue);
  } catch (err) {
    throw new PkiError('CERT_INVALID', 'issuer certificate could not be decoded', { cause: err });
  }
  if (!bc?.ca) throw new PkiError('NOT_CA', `issuer certificate (${name}) is not a CA certificate`);
  if (keyUsage !== undefined && (keyUsage & KEY_CERT_SIGN) === 0) {
    throw new PkiError('NOT_CA', `issuer certificate (${name}) key usage does not include 'cert sign'`);
  }
  if (privateKey?.type !== 'private') throw new PkiError('INVALID_ARGUMENT', 'issuer privateKey must be a private key');
  if (!publicKeyDer(privateKey).equals(certSpki)) {
    throw new PkiError('KEY_MISMATCH', `issuer private key does not match the issuer certificate (${name})`);
  }
  const signer: Signer = {
    issuerName: fields.subject,
    keyId: subjectKeyId !== undefined ? Buffer.from(subjectKeyId, 'hex') : keyIdentifier(certSpki),
    privateKey,
    algorithm: signatureAlgorithmFor(privateKey),
    pathLength: bc.pathLength,
  };
  signers.set(certificate, { privateKey, signer });
  return signer;
}

/** Creates and signs a certificate. See CertificateTemplate for defaults. */
export async function createCertificate(params: CreateCertificateParams): Promise<IssuedCertificate> {
  const subjectName = encodeName(params.subject ?? {});
  if (params.issuer === 'self') {
    const key = params.privateKey;
    if (key?.type !== 'private') throw new PkiError('INVALID_ARGUMENT', 'a self-signed certificate needs a private key');
    if (isEmptyName(subjectName)) throw new PkiError('INVALID_ARGUMENT', 'a self-signed certificate needs a subject');
    const spki = publicKeyDer(key);
    const keyId = keyIdentifier(spki);
    const signer: Signer = {
      issuerName: subjectName,
      keyId,
      privateKey: key,
      algorithm: signatureAlgorithmFor(key),
      pathLength: undefined,
    };
    return build(params, subjectName, spki, keyId, describeKey(key), signer);
  }
  const signer = signerFor(params.issuer);
  if (params.publicKey?.type !== 'public' && params.publicKey?.type !== 'private') {
    throw new PkiError('INVALID_ARGUMENT', 'publicKey must be an asymmetric KeyObject');
  }
  const spki = publicKeyDer(params.publicKey);
  return build(params, subjectName, spki, keyIdentifier(spki), describeKey(params.publicKey), signer);
}

async function build(
  t: CertificateTemplate,
  subjectName: Buffer,
  spki: Buffer,
  subjectKeyId: Buffer,
  subjectKey: KeyDescription,
  signer: Signer,
): Promise<IssuedCertificate> {
  const notBefore = t.notBefore ?? new Date();
  const { notAfter } = t;
  if (!(notAfter instanceof Date) || !(notBefore instanceof Date)) {
    throw new PkiError('INVALID_ARGUMENT', 'notBefore and notAfter must be Dates');
  }
  if (!(notAfter.getTime() > notBefore.getTime())) {
    throw new PkiError('INVALID_ARGUMENT', 'notAfter must be later than notBefore');
  }
  const isCA = t.isCA === true;
  if (t.maxPathLength !== undefined) {
    if (!isCA) throw new PkiError('INVALID_ARGUMENT', 'maxPathLength is only meaningful for a CA');
    if (!Number.isSafeInteger(t.maxPathLength) || t.maxPathLength < 0) {
      throw new PkiError('INVALID_ARGUMENT', 'maxPathLength must be a non-negative integer');
    }
  }
  if (isCA && signer.pathLength === 0) {
    throw new PkiError('INVALID_ARGUMENT', "the issuer's path length constraint is 0: it cannot issue CA certificates");
  }
  const subjectIsEmpty = isEmptyName(subjectName);
  if (subjectIsEmpty && isCA) throw new PkiError('INVALID_ARGUMENT', 'a CA certificate needs a subject');

  const keyUsages: KeyUsageName[] = [...(t.keyUsages ?? defaultKeyUsages(subjectKey.algorithm, isCA))];
  if (isCA) for (const u of CA_KEY_USAGES) if (!keyUsages.includes(u)) keyUsages.push(u);
  checkKeyUsages(subjectKey.algorithm, isCA, keyUsages);

  const san = subjectAltNameExtension(t, subjectIsEmpty);
  if (subjectIsEmpty && san === undefined) {
    throw new PkiError('INVALID_ARGUMENT', 'a certificate needs a subject or at least one subject alternative name');
  }
  const extensions: Buffer[] = [];
  const ku = keyUsageExtension(keyUsages);
  if (ku) extensions.push(ku);
  const eku = extKeyUsageExtension(t.extKeyUsages ?? []);
  if (eku) extensions.push(eku);
  extensions.push(basicConstraintsExtension(isCA, t.maxPathLength));
  extensions.push(subjectKeyIdentifierExtension(subjectKeyId));
  extensions.push(authorityKeyIdentifierExtension(signer.keyId));
  if (san) extensions.push(san);

  const { algorithm } = signer;
  const tbs = sequence(
    contextTag(0, [smallInteger(2)], true), // version v3
    serialNumberField(t.serialNumber),
    algorithm.identifier,
    signer.issuerName,
    sequence(time(notBefore), time(notAfter)),
    subjectName,
    spki,
    extensionsField(extensions),
  );
  const signature = await signAsync(tbs, signer.privateKey, algorithm);
  return new Issued(sequence(tbs, algorithm.identifier, bitString(signature)));
}

function serialNumberField(serial: string | bigint | undefined): Buffer {
  if (serial === undefined) {
    const bytes = randomBytes(16);
    bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01; // positive, 16 octets, never zero
    return positiveInteger(bytes);
  }
  let hex: string;
  if (typeof serial === 'bigint') {
    if (serial <= 0n) throw new PkiError('INVALID_ARGUMENT', 'serialNumber must be positive');
    hex = serial.toString(16);
  } else {
    if (!/^[0-9a-fA-F]+$/.test(serial)) throw new PkiError('INVALID_ARGUMENT', 'serialNumber must be hexadecimal');
    hex = serial;
    if (/^0*$/.test(hex)) throw new PkiError('INVALID_ARGUMENT', 'serialNumber must be positive');
  }
  const field = positiveInteger(Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex'));
  if (field.length - 2 > 20) throw new PkiError('INVALID_ARGUMENT', 'serialNumber must fit in 20 octets');
  return field;
}

// ---------------------------------------------------------------- reading

/**
 * Parses one DER certificate with @peculiar/x509 (about 1 ms). Throws
 * CERT_INVALID naming `what` (for example "certificate 2"). The main fields are
 * read here so that a malformed certificate fails now rather than in a getter.
 */
export function certificateFromDer(der: Uint8Array, what = 'certificate'): x509.X509Certificate {
  if (!isSingleElement(der)) throw new PkiError('CERT_INVALID', `${what} is not a single DER structure`);
  try {
    readCertificateFields(der); // cheap structural check, extensions included
    const cert = new x509.X509Certificate(new Uint8Array(der));
    void cert.subject;
    void cert.issuer;
    void cert.notBefore;
    void cert.notAfter;
    return cert;
  } catch (err) {
    throw new PkiError('CERT_INVALID', `${what} could not be decoded`, { cause: err });
  }
}

/** Every certificate of a PEM bundle or chain, in order. Other block types are refused. */
export function certificatesFromPem(pem: string | Uint8Array, options?: ParsePemOptions): x509.X509Certificate[] {
  const blocks = parsePemBlocks(pemText(pem), options);
  return blocks.map((block, i) => {
    if (block.label !== 'CERTIFICATE') {
      throw new PkiError(
        'PEM_INVALID',
        `PEM block ${i + 1} is labelled ${describeLabel(block.label)}; only CERTIFICATE blocks are allowed here`,
      );
    }
    return certificateFromDer(block.der, `certificate ${i + 1}`);
  });
}

/** Exactly one certificate. */
export function certificateFromPem(pem: string | Uint8Array): x509.X509Certificate {
  const certs = certificatesFromPem(pem);
  const [cert] = certs;
  if (cert === undefined || certs.length !== 1) {
    throw new PkiError('CERT_INVALID', `expected one certificate, found ${certs.length}`);
  }
  return cert;
}

/**
 * An Issuer from PEM (the first certificate of `certificatePem` is the CA's; a
 * chain after it is ignored), checked as by checkIssuer.
 */
export function issuerFromPem(certificatePem: string | Uint8Array, privateKeyPem: string | Uint8Array): Issuer {
  const [certificate] = certificatesFromPem(certificatePem);
  if (certificate === undefined) throw new PkiError('PEM_EMPTY', 'no certificate found');
  const issuer: Issuer = { certificate, privateKey: parsePrivateKeyPem(privateKeyPem) };
  checkIssuer(issuer);
  return issuer;
}

/** The certificate's public key as a node KeyObject. */
export function certificatePublicKey(cert: x509.X509Certificate): KeyObject {
  return publicKeyFromDer(new Uint8Array(cert.publicKey.rawData));
}
