/**
 * PKCS#10 certificate signing requests: created for ACME (acme-client takes the
 * PEM or DER), and signed by the CA issuer.
 */
import { verify, type KeyObject } from 'node:crypto';
import {
  bitString,
  bytesOf,
  children,
  contentOf,
  csrSubjectName,
  isSingleElement,
  readElement,
  readOid,
  sequence,
  smallInteger,
  TAG,
} from './der.js';
import { PkiError } from './errors.js';
import {
  basicConstraintsExtension,
  csrAttributesField,
  decodeSubjectAltNames,
  extKeyUsageExtension,
  keyUsageExtension,
  subjectAltNameExtension,
  type ExtKeyUsageName,
  type KeyUsageName,
  type SubjectAltNames,
} from './extensions.js';
import { createCertificate, type CertificateTemplate, type IssuedCertificate, type Issuer } from './certificates.js';
import { publicKeyDer, publicKeyFromDer } from './keys.js';
import { encodeName, isEmptyName, type SubjectInput } from './names.js';
import { describeLabel, parsePemBlocks, pemText, toPem } from './pem.js';
import { SIGNATURE_HASHES, signAsync, signatureAlgorithmFor } from './signing.js';
import { x509 } from './x509.js';

export interface CsrParams extends SubjectAltNames {
  subject?: SubjectInput;
  /** Signs the request; its public half is the requested key. */
  privateKey: KeyObject;
  /** Requested usages, added as extensions only when given. */
  keyUsages?: readonly KeyUsageName[];
  extKeyUsages?: readonly ExtKeyUsageName[];
  isCA?: boolean;
}

export interface CertificateSigningRequest {
  pem: string;
  der: Buffer;
}

export async function createCsr(params: CsrParams): Promise<CertificateSigningRequest> {
  const key = params.privateKey;
  if (key?.type !== 'private') throw new PkiError('INVALID_ARGUMENT', 'a CSR needs a private key');
  const subject = encodeName(params.subject ?? {});
  const extensions: Buffer[] = [];
  const san = subjectAltNameExtension(params, isEmptyName(subject));
  if (isEmptyName(subject) && san === undefined) {
    throw new PkiError('INVALID_ARGUMENT', 'a CSR needs a subject or at least one subject alternative name');
  }
  if (params.keyUsages) {
    const ku = keyUsageExtension(params.keyUsages);
    if (ku) extensions.push(ku);
  }
  if (params.extKeyUsages) {
    const eku = extKeyUsageExtension(params.extKeyUsages);
    if (eku) extensions.push(eku);
  }
  if (params.isCA !== undefined) extensions.push(basicConstraintsExtension(params.isCA));
  if (san) extensions.push(san);

  const algorithm = signatureAlgorithmFor(key);
  const info = sequence(smallInteger(0), subject, publicKeyDer(key), csrAttributesField(extensions));
  const signature = await signAsync(info, key, algorithm);
  const der = sequence(info, algorithm.identifier, bitString(signature));
  return { pem: toPem('CERTIFICATE REQUEST', der), der };
}

// ---------------------------------------------------------------- reading and signing

/** Parses a CSR from PEM ('CERTIFICATE REQUEST', or the older 'NEW CERTIFICATE REQUEST') or DER. */
export function csrFromPemOrDer(input: string | Uint8Array): x509.Pkcs10CertificateRequest {
  let der: Uint8Array;
  if (typeof input !== 'string' && input[0] === TAG.SEQUENCE) {
    der = input;
  } else {
    const blocks = parsePemBlocks(pemText(input));
    const [block] = blocks;
    if (block === undefined || blocks.length !== 1) {
      throw new PkiError('CSR_INVALID', `expected one certificate request, found ${blocks.length} PEM blocks`);
    }
    if (block.label !== 'CERTIFICATE REQUEST' && block.label !== 'NEW CERTIFICATE REQUEST') {
      throw new PkiError('CSR_INVALID', `expected a certificate request, found ${describeLabel(block.label)}`);
    }
    der = block.der;
  }
  if (!isSingleElement(der)) throw new PkiError('CSR_INVALID', 'certificate request is not a single DER structure');
  try {
    const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
    void csr.subject;
    void csr.extensions;
    void csr.publicKey.algorithm;
    return csr;
  } catch (err) {
    throw new PkiError('CSR_INVALID', 'certificate request could not be decoded', { cause: err });
  }
}

/** Proof of possession: the request is signed by the key it asks to certify. */
export function verifyCsrSignature(csr: x509.Pkcs10CertificateRequest): boolean {
  const der = new Uint8Array(csr.rawData);
  try {
    const [info, algorithm, signature] = children(der, readElement(der, 0));
    if (info?.tag !== TAG.SEQUENCE || algorithm?.tag !== TAG.SEQUENCE || signature?.tag !== TAG.BIT_STRING) return false;
    if (der[signature.contentStart] !== 0) return false; // unused bits must be 0
    const [algorithmOid] = children(der, algorithm);
    if (!algorithmOid) return false;
    const oidText = readOid(contentOf(der, algorithmOid));
    const hash = SIGNATURE_HASHES[oidText];
    if (hash === undefined) {
      throw new PkiError('CSR_INVALID', `certificate request signature algorithm ${oidText} is not supported`);
    }
    const sig = contentOf(der, signature).subarray(1);
    const key = publicKeyFromDer(new Uint8Array(csr.publicKey.rawData));
    return verify(hash, bytesOf(der, info), { key, dsaEncoding: 'der' }, sig);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    return false;
  }
}

/**
 * What signCsr takes besides the CSR. Subject and SANs default to the CSR's;
 * CA flag and usages come only from here (never from the request), with
 * createCertificate's defaults.
 */
export type SignCsrParams = CertificateTemplate;

/**
 * Verifies a CSR's signature (CSR_INVALID otherwise) and issues a certificate
 * for its key, signed by `issuer`.
 */
export async function signCsr(
  csr: string | Uint8Array | x509.Pkcs10CertificateRequest,
  issuer: Issuer,
  params: SignCsrParams,
): Promise<IssuedCertificate> {
  const request = csr instanceof x509.Pkcs10CertificateRequest ? csr : csrFromPemOrDer(csr);
  if (!verifyCsrSignature(request)) {
    throw new PkiError('CSR_INVALID', 'certificate request signature does not verify with its public key');
  }
  const requested = requestedNames(request);
  let subject: SubjectInput;
  try {
    subject = params.subject ?? { der: csrSubjectName(new Uint8Array(request.rawData)) };
  } catch (err) {
    throw new PkiError('CSR_INVALID', 'certificate request subject could not be decoded', { cause: err });
  }
  // Names given in params replace the requested ones as a whole.
  const useRequested = [params.dnsNames, params.ipAddresses, params.uris, params.emailAddresses].every((list) => list === undefined);
  return createCertificate({
    ...params,
    ...(useRequested ? requested : {}),
    subject,
    issuer,
    publicKey: publicKeyFromDer(new Uint8Array(request.publicKey.rawData)),
  });
}

function requestedNames(csr: x509.Pkcs10CertificateRequest): SubjectAltNames {
  const san = csr.getExtension('2.5.29.17');
  if (!san) return {};
  try {
    return decodeSubjectAltNames(new Uint8Array(san.value));
  } catch (err) {
    throw new PkiError('CSR_INVALID', 'certificate request subjectAltName could not be decoded', { cause: err });
  }
}
