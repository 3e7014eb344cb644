/**
 * Key and certificate toolkit: the secret store validates with it, the CLI
 * summarizes with it, the issuance engine creates with it.
 *
 * Import @peculiar/x509 through `x509` from here, never directly: the library
 * needs a Reflect polyfill loaded first (see ./x509.ts).
 */
export { x509 } from './x509.js';
export { PkiError, isPkiError, type PkiErrorCode } from './errors.js';
export { parsePemBlocks, toPem, type PemBlock, type ParsePemOptions } from './pem.js';
export {
  generatePrivateKey,
  encodePrivateKeyPem,
  parsePrivateKeyPem,
  describeKey,
  formatKeyDescription,
  publicKeyDer,
  publicKeyFromDer,
  sameKeyPair,
  type KeySpec,
  type KeyDescription,
  type EcCurve,
  type PrivateKeyEncoding,
} from './keys.js';
export {
  CA_KEY_USAGES,
  checkEmailAddress,
  checkKeyUsages,
  checkSubjectAttributeLength,
  checkUri,
  characterCount,
  defaultKeyUsages,
  normalizeCountry,
  SUBJECT_UPPER_BOUNDS,
  type ProfileKeyAlgorithm,
} from './certificate-profile.js';
export { signatureAlgorithmFor, type SignatureAlgorithm } from './signing.js';
export { type DistinguishedName, type EncodedName, type SubjectInput } from './names.js';
export {
  splitUsages,
  canonicalIpAddress,
  KEY_USAGE_BITS,
  EXT_KEY_USAGE_OIDS,
  type KeyUsageName,
  type ExtKeyUsageName,
  type SubjectAltNames,
} from './extensions.js';
export {
  createCertificate,
  checkIssuer,
  issuerFromPem,
  certificateFromDer,
  certificateFromPem,
  certificatesFromPem,
  certificatePublicKey,
  type Issuer,
  type CertificateTemplate,
  type CreateCertificateParams,
  type IssuedCertificate,
} from './certificates.js';
export {
  createCsr,
  csrFromPemOrDer,
  verifyCsrSignature,
  signCsr,
  type CsrParams,
  type CertificateSigningRequest,
  type SignCsrParams,
} from './csr.js';
export {
  validateTlsCertificate,
  validateCaBundle,
  DEFAULT_MAX_BYTES,
  type ValidateTlsCertificateInput,
  type ValidatedTlsCertificate,
  type ValidateCaBundleInput,
  type ValidatedCaBundle,
} from './validate.js';
export { summarizeCertificate, fingerprint, type CertificateSummary } from './summary.js';
