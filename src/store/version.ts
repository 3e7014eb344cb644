import { createHash } from 'node:crypto';
import type { SecretMaterial } from './secret-material.js';

/**
 * A version is a hash of the content, so replicas agree and a reconnect to another
 * replica does not look like a change. The name is not part of it: it is the content
 * Envoy reloads on.
 */
export function contentVersion(material: SecretMaterial): string {
  const h = createHash('sha256');
  h.update(material.kind);
  if (material.kind === 'tls_certificate') {
    field(h, material.certificateChain);
    field(h, material.privateKey);
    field(h, material.ocspStaple ?? '');
  } else {
    field(h, material.trustedCa);
    field(h, material.crl ?? '');
    for (const san of material.matchSubjectAltNames ?? []) field(h, `${san.type}:${san.value}`);
  }
  return h.digest('hex').slice(0, 16);
}

/** Holds one length prefix at a time: hash.update() copies what it is given. */
const lengthPrefix = Buffer.alloc(4);

function field(h: ReturnType<typeof createHash>, value: string | Buffer): void {
  // Length-prefixed so that moving bytes between fields changes the hash. A string is
  // hashed as its UTF-8 bytes without a copy of it (a rollover hashes thousands of PEMs).
  lengthPrefix.writeUInt32BE(typeof value === 'string' ? Buffer.byteLength(value) : value.length);
  h.update(lengthPrefix);
  h.update(value);
}
