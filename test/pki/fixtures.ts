// Shared builders for the PKI tests: a CA hierarchy, and the openssl CLI in a temp dir.
import { execFileSync, spawnSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificate, generatePrivateKey, type IssuedCertificate, type Issuer, type KeySpec } from '../../src/pki/index.js';

export const DAY = 24 * 60 * 60 * 1000;
/** A fixed clock: tests never depend on when they run. */
export const NOW = new Date('2026-01-15T12:00:00Z');
export const days = (n: number): Date => new Date(NOW.getTime() + n * DAY);

export interface KeyPairCert {
  key: KeyObject;
  cert: IssuedCertificate;
  issuer: Issuer;
}

export async function makeRoot(spec: KeySpec = { algorithm: 'ECDSA', size: 384 }, name = 'Test Root CA'): Promise<KeyPairCert> {
  const key = await generatePrivateKey(spec);
  const cert = await createCertificate({
    subject: { commonName: name, organizations: ['Envoy SDS Tests'] },
    issuer: 'self',
    privateKey: key,
    isCA: true,
    notBefore: days(-1),
    notAfter: days(3650),
  });
  return { key, cert, issuer: { certificate: cert.certificate, privateKey: key } };
}

export async function makeIntermediate(
  parent: KeyPairCert,
  spec: KeySpec = { algorithm: 'ECDSA', size: 256 },
  name = 'Test Intermediate CA',
): Promise<KeyPairCert> {
  const key = await generatePrivateKey(spec);
  const cert = await createCertificate({
    subject: { commonName: name, organizations: ['Envoy SDS Tests'] },
    issuer: parent.issuer,
    publicKey: key,
    isCA: true,
    maxPathLength: 0,
    notBefore: days(-1),
    notAfter: days(365),
  });
  return { key, cert, issuer: { certificate: cert.certificate, privateKey: key } };
}

export async function makeLeaf(
  parent: KeyPairCert,
  spec: KeySpec = { algorithm: 'ECDSA', size: 256 },
  opts: { commonName?: string; notBefore?: Date; notAfter?: Date } = {},
): Promise<{ key: KeyObject; cert: IssuedCertificate }> {
  const key = await generatePrivateKey(spec);
  const cert = await createCertificate({
    subject: { commonName: opts.commonName ?? 'leaf.example.com' },
    issuer: parent.issuer,
    publicKey: key,
    notBefore: opts.notBefore ?? days(-1),
    notAfter: opts.notAfter ?? days(90),
    dnsNames: [opts.commonName ?? 'leaf.example.com'],
    extKeyUsages: ['server auth'],
  });
  return { key, cert };
}

/** A temp directory for files handed to openssl, removed by `cleanup`. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), 'pki-test-'));

  write(name: string, content: string | Uint8Array): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs openssl; returns stdout+stderr and the exit status (never throws on failure). */
export function openssl(args: readonly string[], input?: string): { status: number; output: string } {
  const res = spawnSync('openssl', args, { encoding: 'utf8', input });
  return { status: res.status ?? -1, output: `${res.stdout ?? ''}${res.stderr ?? ''}` };
}

export function opensslOk(args: readonly string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
