/**
 * Private keys: generation, PEM encoding as cert-manager writes it, parsing, and
 * description. Keys are node:crypto KeyObjects throughout.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { PkiError } from './errors.js';
import { describeLabel, parsePemBlocks, pemText } from './pem.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** What to generate; defaults follow cert-manager (RSA 2048, ECDSA P-256). */
export type KeySpec = { algorithm: 'ECDSA'; size?: 256 | 384 } | { algorithm: 'RSA'; size?: 2048 | 3072 | 4096 } | { algorithm: 'Ed25519' };

export type EcCurve = 'P-256' | 'P-384' | 'P-521';

export type KeyDescription =
  { algorithm: 'RSA'; size: number } | { algorithm: 'ECDSA'; curve: EcCurve; size: number } | { algorithm: 'Ed25519' };

/**
 * cert-manager's `privateKey.encoding`. PKCS1 means the algorithm's own format:
 * 'RSA PRIVATE KEY' (PKCS#1) for RSA, 'EC PRIVATE KEY' (SEC 1) for ECDSA; Ed25519
 * has no such format and is written as PKCS#8, as cert-manager does.
 */
export type PrivateKeyEncoding = 'PKCS1' | 'PKCS8';

const CURVES: Record<string, { curve: EcCurve; size: number }> = {
  prime256v1: { curve: 'P-256', size: 256 },
  secp384r1: { curve: 'P-384', size: 384 },
  secp521r1: { curve: 'P-521', size: 521 },
};

export async function generatePrivateKey(spec: KeySpec): Promise<KeyObject> {
  switch (spec.algorithm) {
    case 'ECDSA': {
      const size = spec.size ?? 256;
      if (size !== 256 && size !== 384) {
        throw new PkiError('UNSUPPORTED_KEY', `unsupported ECDSA key size ${String(size)} (use 256 or 384)`);
      }
      const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: size === 256 ? 'P-256' : 'P-384' });
      return privateKey;
    }
    case 'RSA': {
      const size = spec.size ?? 2048;
      if (size !== 2048 && size !== 3072 && size !== 4096) {
        throw new PkiError('UNSUPPORTED_KEY', `unsupported RSA key size ${String(size)} (use 2048, 3072 or 4096)`);
      }
      const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: size, publicExponent: 0x10001 });
      return privateKey;
    }
    case 'Ed25519': {
      const { privateKey } = await generateKeyPairAsync('ed25519');
      return privateKey;
    }
    default:
      throw new PkiError('UNSUPPORTED_KEY', `unsupported key algorithm ${JSON.stringify((spec as { algorithm?: unknown }).algorithm)}`);
  }
}

export function encodePrivateKeyPem(key: KeyObject, encoding: PrivateKeyEncoding = 'PKCS1'): string {
  if (key.type !== 'private') throw new PkiError('INVALID_ARGUMENT', 'expected a private key');
  if (encoding !== 'PKCS1' && encoding !== 'PKCS8') {
    throw new PkiError('INVALID_ARGUMENT', `unknown private key encoding ${JSON.stringify(encoding)}`);
  }
  const { algorithm } = describeKey(key);
  let type: 'pkcs1' | 'sec1' | 'pkcs8' = 'pkcs8';
  if (encoding === 'PKCS1' && algorithm === 'RSA') type = 'pkcs1';
  if (encoding === 'PKCS1' && algorithm === 'ECDSA') type = 'sec1';
  const pem = key.export({ type, format: 'pem' }) as string;
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

const KEY_FORMATS: Record<string, { type: 'pkcs8' | 'pkcs1' | 'sec1'; name: string }> = {
  'PRIVATE KEY': { type: 'pkcs8', name: 'PKCS#8' },
  'RSA PRIVATE KEY': { type: 'pkcs1', name: 'PKCS#1' },
  'EC PRIVATE KEY': { type: 'sec1', name: 'SEC 1' },
};

/**
 * Parses one private key in PEM: PKCS#8 ('PRIVATE KEY'), PKCS#1 ('RSA PRIVATE
 * KEY') or SEC 1 ('EC PRIVATE KEY'). An 'EC PARAMETERS' block, as written by
 * `openssl ecparam -genkey`, is ignored. Encrypted keys are refused.
 * Supported: RSA, ECDSA P-256/P-384/P-521, Ed25519.
 */
export function parsePrivateKeyPem(pem: string | Uint8Array): KeyObject {
  const blocks = parsePemBlocks(pemText(pem));
  const keyBlocks = blocks.filter((b) => b.label !== 'EC PARAMETERS');
  const first = keyBlocks[0];
  if (first === undefined) throw new PkiError('PEM_EMPTY', 'no private key found');
  if (keyBlocks.length > 1) {
    throw new PkiError('KEY_INVALID', `expected one private key, found ${keyBlocks.length} PEM blocks`);
  }
  if (first.label === 'ENCRYPTED PRIVATE KEY') {
    throw new PkiError('UNSUPPORTED_KEY', 'encrypted private keys are not supported');
  }
  const format = KEY_FORMATS[first.label];
  if (format === undefined) {
    throw new PkiError('KEY_INVALID', `expected a private key, found a PEM block labelled ${describeLabel(first.label)}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: first.der, format: 'der', type: format.type });
  } catch (err) {
    // No cause attached and only the error code quoted: OpenSSL messages are
    // generic, but a KeyObject-related error must never carry key bytes along.
    const code = (err as { code?: unknown }).code;
    throw new PkiError('KEY_INVALID', `private key (${format.name}) could not be decoded${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  describeKey(key); // throws UNSUPPORTED_KEY for DSA, X25519, other curves...
  return key;
}

/** Algorithm and size (or curve) of a private or public key. */
export function describeKey(key: KeyObject): KeyDescription {
  if (key.type === 'secret') throw new PkiError('INVALID_ARGUMENT', 'expected an asymmetric key');
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { algorithm: 'RSA', size: key.asymmetricKeyDetails?.modulusLength ?? 0 };
    case 'ec': {
      const named = key.asymmetricKeyDetails?.namedCurve ?? '';
      const curve = CURVES[named];
      if (curve === undefined) throw new PkiError('UNSUPPORTED_KEY', `unsupported elliptic curve '${named}'`);
      return { algorithm: 'ECDSA', ...curve };
    }
    case 'ed25519':
      return { algorithm: 'Ed25519' };
    default:
      throw new PkiError('UNSUPPORTED_KEY', `unsupported key type '${String(key.asymmetricKeyType)}'`);
  }
}

/** "RSA 2048", "ECDSA P-256", "Ed25519". */
export function formatKeyDescription(description: KeyDescription): string {
  switch (description.algorithm) {
    case 'RSA':
      return `RSA ${description.size}`;
    case 'ECDSA':
      return `ECDSA ${description.curve}`;
    case 'Ed25519':
      return 'Ed25519';
  }
}

/** SubjectPublicKeyInfo DER of a public key, or of a private key's public half. */
export function publicKeyDer(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/** A public KeyObject from SubjectPublicKeyInfo DER. */
export function publicKeyFromDer(spki: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(spki.buffer, spki.byteOffset, spki.length), format: 'der', type: 'spki' });
}

/**
 * True when two keys (private or public, any mix) share the same public key.
 * OpenSSL compares the keys themselves (EVP_PKEY_eq): a tenth of the cost of
 * exporting both as SubjectPublicKeyInfo and comparing bytes, measured.
 */
export function sameKeyPair(a: KeyObject, b: KeyObject): boolean {
  const pa = a.type === 'private' ? createPublicKey(a) : a;
  const pb = b.type === 'private' ? createPublicKey(b) : b;
  return pa.equals(pb);
}
