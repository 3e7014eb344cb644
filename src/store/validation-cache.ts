import type { ValidatedMaterial } from './validate-material.js';

/**
 * Recent validation results by content version. The same content often stands under
 * many names (a CA bundle served as every `<secret>-cacert`, a wildcard certificate in
 * several namespaces), and a CA rollover offers it thousands of times at once; parsing
 * and verifying it once is enough. Entries expire quickly because warnings (expiry)
 * depend on the clock; rejections are not cached, so their log lines stay per update.
 */
export class ValidationCache {
  private readonly entries = new Map<string, { result: ValidatedMaterial; at: number }>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 4096,
  ) {}

  get(version: string, now: number): ValidatedMaterial | undefined {
    const e = this.entries.get(version);
    if (!e) return undefined;
    if (now - e.at > this.ttlMs) {
      this.entries.delete(version);
      return undefined;
    }
    return e.result;
  }

  set(version: string, result: ValidatedMaterial, now: number): void {
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(version, { result, at: now });
  }
}
