import { createHash } from 'node:crypto';
import type { StoredSecret } from '../store/secret-material.js';
import { encodeSecret, TYPE_URL_FIELD } from './secret-encoding.js';
import { stringField } from './wire.js';

/**
 * A DiscoveryResponse carrying these secrets (distinct names) under this nonce. One
 * secret (the usual SDS stream) reuses the bytes encoded for its version whole.
 */
export function sotwResponse(secrets: readonly StoredSecret[], nonce: string): Buffer {
  const nonceField = stringField(5, nonce);
  if (secrets.length === 1) return Buffer.concat([encodeSecret(secrets[0]!).sotwBody, nonceField]);
  const parts: Buffer[] = [stringField(1, combinedVersion(secrets))];
  for (const s of secrets) parts.push(encodeSecret(s).sotwResourceField);
  parts.push(TYPE_URL_FIELD, nonceField);
  return Buffer.concat(parts);
}

/** A DeltaDiscoveryResponse: these secrets, these removals, this nonce. */
export function deltaResponse(secrets: readonly StoredSecret[], removed: readonly string[], nonce: string): Buffer {
  const parts: Buffer[] = [];
  for (const s of secrets) parts.push(encodeSecret(s).deltaResourceField);
  parts.push(TYPE_URL_FIELD);
  for (const name of removed) parts.push(stringField(6, name));
  parts.push(stringField(5, nonce));
  return Buffer.concat(parts);
}

/** version_info of a response with several secrets: a hash of their versions. */
function combinedVersion(secrets: readonly StoredSecret[]): string {
  const h = createHash('sha256');
  for (const s of [...secrets].sort((a, b) => (a.name < b.name ? -1 : 1))) h.update(`${s.name}\0${s.version}\0`);
  return h.digest('hex').slice(0, 16);
}
