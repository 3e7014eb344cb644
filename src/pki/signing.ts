/**
 * Signature algorithm selection and signing with a node:crypto private key.
 * Signing runs on libuv's thread pool (the callback form of crypto.sign), so a
 * burst of issuance uses every core and does not block the event loop.
 */
import { sign, type KeyObject } from 'node:crypto';
import { derNull, oid, sequence } from './der.js';
import { describeKey } from './keys.js';

export interface SignatureAlgorithm {
  /** Human name, e.g. "ECDSA with SHA-256". */
  name: string;
  /** Digest for crypto.sign; null for Ed25519 (the algorithm fixes it). */
  hash: string | null;
  /** DER AlgorithmIdentifier for the certificate / CSR. */
  identifier: Buffer;
}

const ECDSA_SHA256: SignatureAlgorithm = {
  name: 'ECDSA with SHA-256',
  hash: 'sha256',
  identifier: sequence(oid('1.2.840.10045.4.3.2')),
};
const ECDSA_SHA384: SignatureAlgorithm = {
  name: 'ECDSA with SHA-384',
  hash: 'sha384',
  identifier: sequence(oid('1.2.840.10045.4.3.3')),
};
const ECDSA_SHA512: SignatureAlgorithm = {
  name: 'ECDSA with SHA-512',
  hash: 'sha512',
  identifier: sequence(oid('1.2.840.10045.4.3.4')),
};
const RSA_SHA256: SignatureAlgorithm = {
  name: 'RSA with SHA-256',
  hash: 'sha256',
  // RFC 4055: the parameters of sha256WithRSAEncryption are an explicit NULL.
  identifier: sequence(oid('1.2.840.113549.1.1.11'), derNull()),
};
const ED25519: SignatureAlgorithm = { name: 'Ed25519', hash: null, identifier: sequence(oid('1.3.101.112')) };

/**
 * The algorithm used when `key` signs: ECDSA P-256 -> SHA-256, P-384 -> SHA-384,
 * P-521 -> SHA-512, RSA -> SHA-256 (PKCS#1 v1.5), Ed25519 -> Ed25519.
 */
export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const d = describeKey(key);
  switch (d.algorithm) {
    case 'ECDSA':
      return d.curve === 'P-256' ? ECDSA_SHA256 : d.curve === 'P-384' ? ECDSA_SHA384 : ECDSA_SHA512;
    case 'RSA':
      return RSA_SHA256;
    case 'Ed25519':
      return ED25519;
  }
}

/** Signs `data`; ECDSA signatures come out DER-encoded, as X.509 wants them. */
export function signAsync(data: Uint8Array, key: KeyObject, algorithm: SignatureAlgorithm): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(algorithm.hash, data, { key, dsaEncoding: 'der' }, (err, signature) => {
      if (err) reject(err);
      else resolve(signature);
    });
  });
}

/**
 * Signature algorithms the toolkit verifies (CSRs, CRLs), by OID, with the digest
 * crypto.verify needs (null: the key type decides, as for Ed25519).
 */
export const SIGNATURE_HASHES: Readonly<Record<string, string | null>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};
