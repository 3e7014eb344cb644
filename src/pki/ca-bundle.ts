// PEM bundles as sets of certificates: what a rotation writes into `ca.crt` (old + new CA,
// then the new one alone) and how it recognises what a Secret or the store already holds.
// Certificates are compared by the SHA-256 of their DER, never by PEM text, so line
// wrapping or order does not count as a difference.

import { createHash, X509Certificate } from 'node:crypto';
import { parsePemBlocks, toPem } from './index.js';

/** SHA-256 (hex) of each CERTIFICATE block, in order; other blocks and text are ignored. */
export function certificateIds(pem: string | undefined): string[] {
  if (!pem) return [];
  try {
    return parsePemBlocks(pem, { allowTextOutsideBlocks: true })
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => createHash('sha256').update(b.der).digest('hex'));
  } catch {
    return [];
  }
}

/** The certificates of every PEM given, each once, first occurrence first. */
export function bundleOf(...pems: string[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const pem of pems) {
    for (const b of parsePemBlocks(pem, { allowTextOutsideBlocks: true })) {
      if (b.label !== 'CERTIFICATE') continue;
      const id = createHash('sha256').update(b.der).digest('hex');
      if (seen.has(id)) continue;
      seen.add(id);
      out.push(toPem('CERTIFICATE', b.der));
    }
  }
  return out.join('');
}

/** Both hold exactly the same certificates (order and encoding aside). */
export function sameCertificates(a: string | undefined, b: string | undefined): boolean {
  const x = new Set(certificateIds(a));
  const y = certificateIds(b);
  return x.size === new Set(y).size && y.every((id) => x.has(id));
}

/** The first certificate of `pem`, as its id. */
export function firstCertificateId(pem: string | undefined): string | undefined {
  return certificateIds(pem)[0];
}

/** Whether the leaf (first certificate of `chainPem`) is signed by the first certificate of `caPem`. */
export function signedBy(chainPem: string | undefined, caPem: string): boolean {
  if (!chainPem) return false;
  try {
    const leaf = new X509Certificate(chainPem);
    const ca = new X509Certificate(caPem);
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** Each CERTIFICATE block of `pem` as its own PEM text, in order. */
export function splitCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** Whether the first certificate of `pem` is self-signed (issued by itself, and its own signature verifies). */
export function isSelfSigned(pem: string): boolean {
  try {
    const c = new X509Certificate(pem);
    return c.checkIssued(c) && c.verify(c.publicKey);
  } catch {
    return false;
  }
}

/** Whether the first certificate of `pem` has expired at `now`. */
export function expiredAt(pem: string | undefined, now: Date): boolean {
  if (!pem) return false;
  try {
    return Date.parse(new X509Certificate(pem).validTo) <= now.getTime();
  } catch {
    return false;
  }
}

/** What status shows of a CA: never more than its public facts. */
export interface CaDescription {
  subject: string;
  sha256Fingerprint: string;
  notBefore: string;
  notAfter: string;
}

export function describeCa(pem: string): CaDescription {
  const c = new X509Certificate(pem);
  return {
    subject: c.subject.replace(/\n/g, ', '),
    sha256Fingerprint: c.fingerprint256,
    notBefore: new Date(c.validFrom).toISOString(),
    notAfter: new Date(c.validTo).toISOString(),
  };
}
