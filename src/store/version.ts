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

function field(h: ReturnType<typeof createHash>, value: string | Buffer): void {
  // Length-prefixed so that moving bytes between fields changes the hash.
  const buf = typeof value === 'string' ? Buffer.from(value) : value;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  h.update(len);
  h.update(buf);
}
