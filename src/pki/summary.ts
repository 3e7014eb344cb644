/**
 * A plain-data view of a certificate for the CLI, status pages and logs.
 * Read from the DER directly (./certificate-fields.ts): cheap enough for the
 * store to call on every update.
 */
import { createHash, type KeyObject } from 'node:crypto';
import {
  EXTENSION,
  nameToString,
  readAuthorityKeyIdentifier,
  readBasicConstraints,
  readCertificateFields,
  readExtKeyUsage,
  readKeyUsage,
  readSubjectKeyIdentifier,
  type CertificateFields,
} from './certificate-fields.js';
import { PkiError } from './errors.js';
import { decodeSubjectAltNames, extKeyUsageName, keyUsageNames, type DecodedSubjectAltNames } from './extensions.js';
import { describeKey, formatKeyDescription, publicKeyFromDer } from './keys.js';
import { x509 } from './x509.js';

export interface CertificateSummary {
  /** Formatted as @peculiar/x509 prints names, e.g. "O=Example, CN=example.com". */
  subject: string;
  issuer: string;
  /** Uppercase hex, as `openssl x509 -serial` prints it. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  /** IPv6 in RFC 5952 form. */
  ipAddresses: string[];
  uris: string[];
  emailAddresses: string[];
  isCA: boolean;
  /** pathLenConstraint of a CA, when set. */
  maxPathLength?: number;
  /** cert-manager names: 'digital signature', 'cert sign'... */
  keyUsages: string[];
  /** cert-manager names ('server auth'...), or the OID when unnamed. */
  extKeyUsages: string[];
  /** "ECDSA P-256", "RSA 2048", "Ed25519" (or the OpenSSL key type name). */
  keyAlgorithm: string;
  /** "ECDSA with SHA-256", "RSA with SHA-256", "Ed25519", or the OID. */
  signatureAlgorithm: string;
  /** Colon-separated uppercase hex of the DER's SHA-256. */
  sha256Fingerprint: string;
  sha1Fingerprint: string;
  /** Hex, when the extension is present. */
  subjectKeyId?: string;
  authorityKeyId?: string;
}

export function fingerprint(der: Uint8Array, algorithm: 'sha256' | 'sha1' = 'sha256'): string {
  const hex = createHash(algorithm).update(der).digest('hex').toUpperCase();
  return hex.replace(/(..)(?!$)/g, '$1:');
}

const SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'ECDSA with SHA-256',
  '1.2.840.10045.4.3.3': 'ECDSA with SHA-384',
  '1.2.840.10045.4.3.4': 'ECDSA with SHA-512',
  '1.2.840.113549.1.1.5': 'RSA with SHA-1',
  '1.2.840.113549.1.1.11': 'RSA with SHA-256',
  '1.2.840.113549.1.1.12': 'RSA with SHA-384',
  '1.2.840.113549.1.1.13': 'RSA with SHA-512',
  '1.2.840.113549.1.1.10': 'RSA-PSS',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
};

/** Summary of a certificate given as a parsed @peculiar/x509 object or as DER. */
export function summarizeCertificate(cert: x509.X509Certificate | Uint8Array): CertificateSummary {
  const der = cert instanceof Uint8Array ? cert : new Uint8Array(cert.rawData);
  let fields: CertificateFields;
  try {
    fields = readCertificateFields(der);
  } catch (err) {
    throw new PkiError('CERT_INVALID', 'certificate could not be decoded', { cause: err });
  }
  return summarizeFields(der, fields);
}

/**
 * For callers that already hold the decoded fields (and, optionally, the certificate's
 * public key as a KeyObject, which spares decoding it again).
 */
export function summarizeFields(der: Uint8Array, fields: CertificateFields, publicKey?: KeyObject): CertificateSummary {
  const ext = (oid: string): Buffer | undefined => fields.extensions.get(oid)?.value;
  const tolerant = <T>(read: () => T, fallback: T): T => {
    try {
      return read();
    } catch {
      return fallback; // a malformed optional extension is shown as absent
    }
  };
  const bcValue = ext(EXTENSION.basicConstraints);
  const bc = bcValue ? tolerant(() => readBasicConstraints(bcValue), { ca: false }) : { ca: false };
  const kuValue = ext(EXTENSION.keyUsage);
  const ekuValue = ext(EXTENSION.extKeyUsage);
  const sanValue = ext(EXTENSION.subjectAltName);
  const skiValue = ext(EXTENSION.subjectKeyIdentifier);
  const akiValue = ext(EXTENSION.authorityKeyIdentifier);
  const noNames: DecodedSubjectAltNames = { dnsNames: [], ipAddresses: [], uris: [], emailAddresses: [] };

  const summary: CertificateSummary = {
    subject: tolerant(() => nameToString(fields.subject), ''),
    issuer: tolerant(() => nameToString(fields.issuer), ''),
    serialNumber: fields.serialNumber,
    notBefore: fields.notBefore,
    notAfter: fields.notAfter,
    ...(sanValue ? tolerant(() => decodeSubjectAltNames(sanValue), noNames) : noNames),
    isCA: bc.ca,
    keyUsages: kuValue ? keyUsageNames(tolerant(() => readKeyUsage(kuValue), 0)) : [],
    extKeyUsages: ekuValue ? tolerant(() => readExtKeyUsage(ekuValue), []).map(extKeyUsageName) : [],
    keyAlgorithm: keyAlgorithmOf(fields.subjectPublicKeyInfo, publicKey),
    signatureAlgorithm: SIGNATURE_ALGORITHMS[fields.signatureAlgorithm] ?? fields.signatureAlgorithm,
    sha256Fingerprint: fingerprint(der, 'sha256'),
    sha1Fingerprint: fingerprint(der, 'sha1'),
  };
  if (bc.ca && bc.pathLength !== undefined) summary.maxPathLength = bc.pathLength;
  const ski = skiValue ? tolerant(() => readSubjectKeyIdentifier(skiValue), undefined) : undefined;
  if (ski !== undefined) summary.subjectKeyId = ski;
  const aki = akiValue ? tolerant(() => readAuthorityKeyIdentifier(akiValue), undefined) : undefined;
  if (aki !== undefined) summary.authorityKeyId = aki;
  return summary;
}

function keyAlgorithmOf(spki: Uint8Array, known: KeyObject | undefined): string {
  let key = known;
  try {
    key ??= publicKeyFromDer(spki);
  } catch {
    return 'unknown';
  }
  try {
    return formatKeyDescription(describeKey(key));
  } catch {
    return key.asymmetricKeyType ?? 'unknown';
  }
}
