/**
 * The store's door: what a tls_certificate or validation_context must satisfy
 * before it is served. Synchronous; throws PkiError with a stable code and a
 * message that names positions and subjects but never quotes key material.
 *
 * Expiry is not an error here: an expired certificate is still the best thing
 * to serve until a renewed one arrives, so it yields a warning.
 *
 * Certificates are read from DER by ./certificate-fields.ts and must also parse
 * in OpenSSL (node's X509Certificate), whose signature check links the chain.
 * @peculiar/x509 objects are built only when a caller asks for them (~1 ms
 * each), which keeps a leaf + CA validation near 1.5 ms instead of ~10 ms.
 *
 * CA certificates (every position of a chain but the leaf, every certificate of a
 * bundle) are parsed once per content and their signature links checked once per
 * pair (./parsed-certificate-cache.ts): a rollover of 10,000 leaves under one
 * intermediate parses and verifies the intermediate once. The leaf's own checks run
 * every time. bench/validation-cost.ts measures the steps.
 */
import { createPublicKey, X509Certificate as NodeX509Certificate, type KeyObject } from 'node:crypto';
import { certificateFromDer } from './certificates.js';
import {
  EXTENSION,
  nameToString,
  readBasicConstraints,
  readCertificateFields,
  readKeyUsage,
  type CertificateFields,
} from './certificate-fields.js';
import { isSingleElement } from './der.js';
import { PkiError } from './errors.js';
import { describeKey, formatKeyDescription, parsePrivateKeyPem, type KeyDescription } from './keys.js';
import { ParsedCertificateCache, type ParsedCertificate } from './parsed-certificate-cache.js';
import { byteLength, describeLabel, parsePemBlocks, pemText, type ParsePemOptions } from './pem.js';
import { fingerprint, summarizeFields, type CertificateSummary } from './summary.js';
import type { x509 } from './x509.js';

/** The Kubernetes limit for one Secret. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

export interface ValidateTlsCertificateInput {
  /** Leaf first, then each certificate's issuer. */
  chainPem: string | Uint8Array;
  keyPem: string | Uint8Array;
  /** Default: the current time. */
  now?: Date;
  /** Cap on chain + key together, in bytes. Default DEFAULT_MAX_BYTES. */
  maxBytes?: number;
}

export interface ValidatedTlsCertificate {
  /** Summary of the leaf: prefer it to summarizeCertificate(chain[0]), which parses again. */
  leaf: CertificateSummary;
  /** DER of each certificate, leaf first. */
  chainDer: Buffer[];
  /** The chain as @peculiar/x509 objects, parsed on first access (about 1 ms per certificate). */
  readonly chain: x509.X509Certificate[];
  key: KeyDescription;
  /** For example "certificate 1 (CN=example.com) expired at 2024-01-01T00:00:00.000Z". */
  warnings: string[];
}

export interface ValidateCaBundleInput {
  pem: string | Uint8Array;
  now?: Date;
  /** Default DEFAULT_MAX_BYTES. */
  maxBytes?: number;
  /** Accept explanatory text between certificates (curl's cacert.pem style). Default false. */
  allowTextOutsideBlocks?: boolean;
}

export interface ValidatedCaBundle {
  /** One per certificate, in order. */
  summaries: CertificateSummary[];
  certificatesDer: Buffer[];
  /** As @peculiar/x509 objects, parsed on first access (about 1 ms per certificate). */
  readonly certificates: x509.X509Certificate[];
  warnings: string[];
}

/** A certificate as the door sees it: DER, its fields, OpenSSL's parse. */
interface Checked {
  position: number;
  der: Buffer;
  fields: CertificateFields;
  native: NodeX509Certificate;
  publicKey: KeyObject;
  /** "certificate 2 (O=Example, CN=Example CA)". */
  label: string;
  /** The shared parse, for a CA position; undefined for a leaf. */
  cached?: ParsedCertificate;
}

/** Per process (each validation worker has its own). */
const parsedCas = new ParsedCertificateCache();

export function validateTlsCertificate(input: ValidateTlsCertificateInput): ValidatedTlsCertificate {
  const now = input.now ?? new Date();
  const maxBytes = input.maxBytes ?? DEFAULT_MAX_BYTES;
  const size = byteLength(input.chainPem) + byteLength(input.keyPem);
  if (size > maxBytes) {
    throw new PkiError('TOO_LARGE', `certificate chain and private key are ${size} bytes; the limit is ${maxBytes}`);
  }
  const chain = inContext('certificate chain', () => readCertificates(input.chainPem, undefined, 2));
  const key = inContext('private key', () => parsePrivateKeyPem(input.keyPem));
  const keyDescription = describeKey(key);
  if (keyDescription.algorithm === 'RSA' && keyDescription.size < 2048) {
    throw new PkiError(
      'UNSUPPORTED_KEY',
      `RSA keys smaller than 2048 bits are refused (Envoy rejects them); this one has ${keyDescription.size}`,
    );
  }

  const leaf = chain[0] as Checked;
  // OpenSSL compares the keys (EVP_PKEY_eq): a tenth of the cost of exporting both.
  if (!createPublicKey(key).equals(leaf.publicKey)) {
    throw new PkiError(
      'KEY_MISMATCH',
      `private key (${formatKeyDescription(keyDescription)}) does not match the public key of ${leaf.label}`,
    );
  }

  const warnings: string[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    checkLink(chain[i] as Checked, chain[i + 1] as Checked, warnings);
  }
  for (const cert of chain) validityWarnings(cert, now, warnings);
  const chainDer = chain.map((c) => c.der);
  const result = { leaf: summarizeFields(leaf.der, leaf.fields, leaf.publicKey), chainDer, key: keyDescription, warnings };
  return withLazyCertificates(result, 'chain', chainDer);
}

export function validateCaBundle(input: ValidateCaBundleInput): ValidatedCaBundle {
  const now = input.now ?? new Date();
  const maxBytes = input.maxBytes ?? DEFAULT_MAX_BYTES;
  const size = byteLength(input.pem);
  if (size > maxBytes) throw new PkiError('TOO_LARGE', `CA bundle is ${size} bytes; the limit is ${maxBytes}`);
  const certs = inContext('CA bundle', () =>
    readCertificates(input.pem, { allowTextOutsideBlocks: input.allowTextOutsideBlocks === true }, 1),
  );
  const warnings: string[] = [];
  const seen = new Map<string, number>();
  for (const cert of certs) {
    const bc = basicConstraints(cert);
    if (bc?.ca) {
      const ku = extension(cert, EXTENSION.keyUsage, 'keyUsage', readKeyUsage);
      if (ku !== undefined && (ku & KEY_CERT_SIGN) === 0) {
        warnings.push(`${cert.label} is a CA but its key usage lacks 'cert sign'; verifiers will not accept certificates it signed`);
      }
    } else if (isSelfSignedV1(cert)) {
      warnings.push(`${cert.label} is a version 1 certificate without extensions; accepted as a CA because it is self-signed`);
    } else {
      throw new PkiError('NOT_CA', `${cert.label} is not a CA certificate (basicConstraints cA is not set)`);
    }
    const print = fingerprint(cert.der);
    const first = seen.get(print);
    if (first !== undefined) warnings.push(`certificate ${cert.position} is a duplicate of certificate ${first}`);
    else seen.set(print, cert.position);
    validityWarnings(cert, now, warnings);
  }
  const certificatesDer = certs.map((c) => c.der);
  const result = { summaries: certs.map(summaryOf), certificatesDer, warnings };
  return withLazyCertificates(result, 'certificates', certificatesDer);
}

// ---------------------------------------------------------------- helpers

const KEY_CERT_SIGN = 1 << 5;

/** Adds `name` as an enumerable getter that parses the certificates once, on first use. */
function withLazyCertificates<T extends object, K extends string>(
  target: T,
  name: K,
  ders: readonly Buffer[],
): T & { readonly [P in K]: x509.X509Certificate[] } {
  let parsed: x509.X509Certificate[] | undefined;
  Object.defineProperty(target, name, {
    enumerable: true,
    get: () => (parsed ??= ders.map((der, i) => certificateFromDer(der, `certificate ${i + 1}`))),
  });
  return target as T & { readonly [P in K]: x509.X509Certificate[] };
}

/** Re-throws a PkiError with a prefix saying which input it concerns. */
function inContext<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PkiError) throw new PkiError(err.code, `${what}: ${err.message}`);
    throw err;
  }
}

/** A CA's summary is computed once per content and shared, frozen so that no caller changes it for the next. */
function summaryOf(cert: Checked): CertificateSummary {
  if (!cert.cached) return summarizeFields(cert.der, cert.fields, cert.publicKey);
  return (cert.cached.summary ??= frozen(summarizeFields(cert.der, cert.fields, cert.publicKey)));
}

function frozen(s: CertificateSummary): CertificateSummary {
  for (const v of Object.values(s)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze(s);
}

/**
 * Every block must be a CERTIFICATE that both our reader and OpenSSL accept. Blocks
 * from position `cacheFrom` on (1-based) are CAs: looked up in, and added to, the
 * parsed-certificate cache.
 */
function readCertificates(pem: string | Uint8Array, options: ParsePemOptions | undefined, cacheFrom: number): Checked[] {
  const blocks = parsePemBlocks(pemText(pem), options);
  return blocks.map((block, i) => {
    const position = i + 1;
    if (position >= cacheFrom && block.label === 'CERTIFICATE') {
      const hit = parsedCas.get(block.der);
      if (hit) {
        const { der, fields, native, publicKey, subject } = hit;
        return { position, der, fields, native, publicKey, label: `certificate ${position} (${subject || 'no subject'})`, cached: hit };
      }
    }
    if (block.label !== 'CERTIFICATE') {
      throw new PkiError(
        'PEM_INVALID',
        `PEM block ${position} is labelled ${describeLabel(block.label)}; only CERTIFICATE blocks are allowed here`,
      );
    }
    if (!isSingleElement(block.der)) {
      throw new PkiError('CERT_INVALID', `certificate ${position} is not a single DER structure`);
    }
    let fields: CertificateFields;
    let native: NodeX509Certificate;
    let publicKey: KeyObject;
    try {
      fields = readCertificateFields(block.der);
    } catch (err) {
      throw new PkiError('CERT_INVALID', `certificate ${position} could not be decoded`, { cause: err });
    }
    let subject = '';
    try {
      subject = nameToString(fields.subject);
    } catch {
      // leave the label without a subject; OpenSSL decides below
    }
    const label = `certificate ${position} (${subject || 'no subject'})`;
    try {
      native = new NodeX509Certificate(block.der);
      publicKey = native.publicKey; // decoded lazily by node: force it now
    } catch (err) {
      throw new PkiError('CERT_INVALID', `${label} is rejected by OpenSSL`, { cause: err });
    }
    const checked: Checked = { position, der: block.der, fields, native, publicKey, label };
    if (position >= cacheFrom) {
      checked.cached = { der: block.der, fields, native, publicKey, subject };
      parsedCas.set(checked.cached);
    }
    return checked;
  });
}

/** A decoded extension value, undefined when absent; CERT_INVALID when malformed. */
function extension<T>(cert: Checked, oid: string, name: string, read: (value: Buffer) => T): T | undefined {
  const ext = cert.fields.extensions.get(oid);
  if (!ext) return undefined;
  try {
    return read(ext.value);
  } catch (err) {
    throw new PkiError('CERT_INVALID', `${cert.label} has a malformed ${name} extension`, { cause: err });
  }
}

function basicConstraints(cert: Checked): { ca: boolean; pathLength?: number } | undefined {
  return extension(cert, EXTENSION.basicConstraints, 'basicConstraints', readBasicConstraints);
}

function normalizedName(name: Uint8Array): string {
  try {
    return nameToString(name).toLowerCase().replace(/\s+/g, ' ');
  } catch {
    return `#${Buffer.from(name).toString('hex')}`;
  }
}

/** Byte equality, else RFC 5280's case- and space-insensitive comparison (approximately). */
function namesEqual(a: Buffer, b: Buffer): boolean {
  return a.equals(b) || normalizedName(a) === normalizedName(b);
}

/** `child` must be issued by `parent`: names link, the signature verifies, the parent is a CA. */
function checkLink(child: Checked, parent: Checked, warnings: string[]): void {
  if (!namesEqual(child.fields.issuer, parent.fields.subject)) {
    if (namesEqual(parent.fields.issuer, child.fields.subject)) {
      throw new PkiError(
        'CHAIN_ORDER',
        `${child.label} is not issued by ${parent.label}; the chain looks reversed: put the leaf first, then each certificate's issuer`,
      );
    }
    throw new PkiError(
      'CHAIN_ORDER',
      `${child.label} names issuer '${normalizedIssuer(child)}', but the next certificate, ${parent.label}, is not it; the chain must be leaf first, each certificate followed by its issuer`,
    );
  }
  // Two given CA certificates link or not, whenever asked: check each pair once.
  let verified = child.cached !== undefined && parent.cached !== undefined && child.cached.verifiedBy?.has(parent.cached) === true;
  if (!verified) {
    try {
      verified = child.native.verify(parent.publicKey);
    } catch {
      verified = false;
    }
    if (verified && child.cached && parent.cached) (child.cached.verifiedBy ??= new WeakSet()).add(parent.cached);
  }
  if (!verified) {
    throw new PkiError('CHAIN_SIGNATURE', `the signature of ${child.label} does not verify with the public key of ${parent.label}`);
  }
  if (!basicConstraints(parent)?.ca) {
    if (parent.fields.version === 1) {
      warnings.push(`${parent.label} is a version 1 certificate used as a CA`);
    } else {
      throw new PkiError('NOT_CA', `${parent.label} issues ${child.label} but is not a CA certificate`);
    }
  }
}

function normalizedIssuer(cert: Checked): string {
  try {
    return nameToString(cert.fields.issuer);
  } catch {
    return '(undecodable name)';
  }
}

function isSelfSignedV1(cert: Checked): boolean {
  if (cert.fields.version !== 1 || !namesEqual(cert.fields.issuer, cert.fields.subject)) return false;
  try {
    return cert.native.verify(cert.publicKey);
  } catch {
    return false;
  }
}

function validityWarnings(cert: Checked, now: Date, warnings: string[]): void {
  const { notBefore, notAfter } = cert.fields;
  if (notAfter.getTime() < now.getTime()) {
    warnings.push(`${cert.label} expired at ${notAfter.toISOString()}`);
  } else if (notBefore.getTime() > now.getTime()) {
    warnings.push(`${cert.label} is not yet valid (valid from ${notBefore.toISOString()})`);
  }
}
