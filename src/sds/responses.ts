import { createHash } from 'node:crypto';
import type { StoredSecret } from '../store/secret-material.js';
import { encodeSecret, TYPE_URL_FIELD } from './secret-encoding.js';
import { stringField } from './wire.js';

/**
 * A response message as parts whose concatenation is the message. The first part is the
 * stream's own (its nonce: protobuf takes fields in any order, so it leads); the rest
 * are bytes encoded once per secret version and shared by every stream, written as they
 * are, never copied per push.
 */
export type ResponseParts = readonly Buffer[];

/** A DiscoveryResponse carrying these secrets (distinct names) under this nonce. */
export function sotwResponse(secrets: readonly StoredSecret[], nonce: string): ResponseParts {
  const nonceField = stringField(5, nonce);
  // One secret (the usual SDS stream): its whole response body, as encoded for its version.
  if (secrets.length === 1) return [nonceField, encodeSecret(secrets[0]!).sotwBody];
  const parts: Buffer[] = [nonceField, stringField(1, combinedVersion(secrets))];
  for (const s of secrets) parts.push(encodeSecret(s).sotwResourceField);
  parts.push(TYPE_URL_FIELD);
  return parts;
}

/** A DeltaDiscoveryResponse: these secrets, these removals, this nonce. */
export function deltaResponse(secrets: readonly StoredSecret[], removed: readonly string[], nonce: string): ResponseParts {
  const parts: Buffer[] = [stringField(5, nonce)];
  for (const s of secrets) parts.push(encodeSecret(s).deltaResourceField);
  parts.push(TYPE_URL_FIELD);
  for (const name of removed) parts.push(stringField(6, name));
  return parts;
}

/** version_info of a response with several secrets: a hash of their versions. */
function combinedVersion(secrets: readonly StoredSecret[]): string {
  const h = createHash('sha256');
  for (const s of [...secrets].sort((a, b) => (a.name < b.name ? -1 : 1))) h.update(`${s.name}\0${s.version}\0`);
  return h.digest('hex').slice(0, 16);
}
