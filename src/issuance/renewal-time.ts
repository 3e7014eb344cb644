// When a certificate is renewed: cert-manager's rule (renewBefore, or
// renewBeforePercentage of the actual lifetime, or one third of it; a renewBefore not
// shorter than the lifetime falls back to one third), made earlier by a jitter so that
// certificates issued together do not all renew in the same minute. The jitter is derived
// from the certificate's identity and expiry, so it is stable across restarts and needs
// no random source: a pure function.

import { createHash } from 'node:crypto';
import type { CertificateSpec } from './resources.js';

export interface RenewalInput {
  notBefore: Date;
  notAfter: Date;
  renewBefore: CertificateSpec['renewBefore'];
  /** Fraction of renewBefore (0..0.5) by which renewal may come early. */
  jitter: number;
  /** Spreads the jitter: the certificate's `namespace/name`. */
  seed: string;
}

/** How long before notAfter renewal is due, without jitter. */
export function renewBeforeMs(lifetimeMs: number, renewBefore: CertificateSpec['renewBefore']): number {
  if (renewBefore && 'percentage' in renewBefore) return (lifetimeMs * renewBefore.percentage) / 100;
  if (renewBefore && renewBefore.ms < lifetimeMs) return renewBefore.ms;
  return lifetimeMs / 3;
}

export function renewalTime(input: RenewalInput): Date {
  const lifetime = input.notAfter.getTime() - input.notBefore.getTime();
  const before = renewBeforeMs(lifetime, input.renewBefore);
  const early = before * input.jitter * unitFraction(`${input.seed}|${input.notAfter.toISOString()}`);
  return new Date(Math.floor(input.notAfter.getTime() - before - early));
}

/** A number in [0, 1) from a string, evenly spread. */
export function unitFraction(seed: string): number {
  return createHash('sha256').update(seed).digest().readUInt32BE(0) / 2 ** 32;
}
