import { validateCaBundle, validateTlsCertificate, type CertificateSummary } from '../pki/index.js';
import { PkiError } from '../pki/errors.js';
import { checkCrls, checkOcspStaple } from '../pki/revocation.js';
import type { CertificateFacts, SecretMaterial } from './secret-material.js';

export interface ValidationLimits {
  /** Cap on the PEM text of one secret (chain + key, or bundle). */
  maxBytes: number;
}

export const DEFAULT_LIMITS: ValidationLimits = { maxBytes: 256 * 1024 };

export interface ValidatedMaterial {
  facts: CertificateFacts;
  warnings: string[];
}

/**
 * The store's door: PEM parses, the key matches the leaf, the chain is leaf-first and
 * links, a bundle holds CA certificates, sizes are capped. Throws a PkiError (with a
 * stable code and a message free of key material) when the material must not be served.
 */
export function validateMaterial(material: SecretMaterial, now: Date, limits: ValidationLimits = DEFAULT_LIMITS): ValidatedMaterial {
  if (material.kind === 'tls_certificate') {
    const result = validateTlsCertificate({
      chainPem: material.certificateChain,
      keyPem: material.privateKey,
      now,
      maxBytes: limits.maxBytes,
    });
    const warnings = [...result.warnings];
    // `openssl req -x509` makes CA:TRUE certificates: served, but its key could sign anything.
    if (result.leaf.isCA)
      warnings.push(
        `the certificate (${result.leaf.subject}) is a CA (CA:TRUE): its private key, served with it, can sign for any name; Envoy needs a leaf`,
      );
    if (material.ocspStaple && material.ocspStaple.length > 0) {
      if (material.ocspStaple.length > limits.maxBytes)
        throw new PkiError('TOO_LARGE', `OCSP staple is ${material.ocspStaple.length} bytes; the limit is ${limits.maxBytes}`);
      warnings.push(...checkOcspStaple(material.ocspStaple, result.leaf.serialNumber, now).warnings);
    }
    return { facts: toFacts(result.leaf), warnings };
  }
  const crlBytes = material.crl ? Buffer.byteLength(material.crl) : 0;
  if (crlBytes > 0 && Buffer.byteLength(material.trustedCa) + crlBytes > limits.maxBytes) {
    throw new PkiError(
      'TOO_LARGE',
      `CA bundle and CRL are ${Buffer.byteLength(material.trustedCa) + crlBytes} bytes; the limit is ${limits.maxBytes}`,
    );
  }
  const result = validateCaBundle({ pem: material.trustedCa, now, maxBytes: limits.maxBytes });
  const warnings = [...result.warnings];
  if (material.crl) warnings.push(...checkCrls(material.crl, result.certificatesDer, now).warnings);
  return { facts: toFacts(result.summaries[0]!), warnings };
}

function toFacts(s: CertificateSummary): CertificateFacts {
  return {
    subject: s.subject,
    notBefore: s.notBefore,
    notAfter: s.notAfter,
    dnsNames: [...s.dnsNames],
    sha256Fingerprint: s.sha256Fingerprint,
  };
}
