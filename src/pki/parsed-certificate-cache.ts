/**
 * CA certificates as the store's door has already parsed them, by their exact DER.
 *
 * Why: in a CA rollover thousands of distinct leaves arrive with the same
 * intermediate, and a CA bundle that gains one certificate is mostly certificates
 * seen before. Parsing a certificate (our DER reader, OpenSSL, its public key) and
 * checking a signature between two given certificates give the same answer for the
 * same bytes, so each is done once per content instead of once per update.
 *
 * Only certificates that parsed go in (a rejection is recomputed, and logged, each
 * time), only CA positions are offered (distinct leaves would evict the CAs), and the
 * size is capped. Nothing here depends on the clock: expiry is checked per update.
 */
import type { KeyObject, X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { CertificateFields } from './certificate-fields.js';
import type { CertificateSummary } from './summary.js';

export interface ParsedCertificate {
  der: Buffer;
  fields: CertificateFields;
  native: NodeX509Certificate;
  publicKey: KeyObject;
  /** The subject as text, '' when it does not decode. */
  subject: string;
  /** Issuers (cached entries) whose public key verified this certificate's signature. */
  verifiedBy?: WeakSet<ParsedCertificate>;
  /** Filled on first use. Shared: never mutate it. */
  summary?: CertificateSummary;
}

export class ParsedCertificateCache {
  private readonly entries = new Map<string, ParsedCertificate>();

  /** Each entry holds OpenSSL objects (a few KB): 2048 covers large trust bundles and their intermediates. */
  constructor(private readonly maxEntries = 2048) {}

  get(der: Buffer): ParsedCertificate | undefined {
    return this.entries.get(der.toString('latin1'));
  }

  set(entry: ParsedCertificate): void {
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(entry.der.toString('latin1'), entry);
  }

  get size(): number {
    return this.entries.size;
  }
}
