/**
 * Many distinct TLS identities for the CA-rollover benchmark: per generation one
 * intermediate CA (under one root) and `count` leaves, each with its own ECDSA P-256
 * key, signed by that intermediate. A secret carries leaf + intermediate, as in
 * bench/materials.ts, so every secret's chain is distinct while its CA is shared:
 * what a rollover looks like.
 *
 * Issuing 20,000 leaves takes a while even with src/pki's fast path, so the sets are
 * written once to a JSON file under the temp dir and reused while their certificates
 * have plenty of validity left. The Go peer reads the same file (-materials), so both
 * servers serve the same certificates.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificate, encodePrivateKeyPem, generatePrivateKey, type Issuer } from '../src/pki/index.js';
import type { Material } from './materials.js';

const DAY = 24 * 3600 * 1000;
/** Leaves live 90 days; a cache file older than this is re-issued. */
const MAX_CACHE_AGE_MS = 30 * DAY;
const IN_FLIGHT = 16;

/** The file format, shared with bench/go/peer (-materials). */
export interface DistinctMaterialsFile {
  /** sets[generation % sets.length][i] is secret bench-i's material. */
  sets: Array<Array<{ chain: string; key: string }>>;
}

export function defaultMaterialsDir(): string {
  return join(tmpdir(), 'envoy-sds-bench-materials');
}

/** Path of the cached file for `count` secrets and `generations` sets, issuing it when missing or old. */
export async function distinctMaterialsFile(
  count: number,
  generations: number,
  dir = defaultMaterialsDir(),
  say: (m: string) => void = () => undefined,
): Promise<string> {
  const file = join(dir, `distinct-${count}x${generations}.json`);
  if (existsSync(file) && Date.now() - statSync(file).mtimeMs < MAX_CACHE_AGE_MS) return file;
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const sets: DistinctMaterialsFile['sets'] = [];
  const root = await rootCa();
  for (let g = 0; g < generations; g++) {
    sets.push((await issueGeneration(root, g, count)).map((m) => ({ chain: m.chainPem, key: m.keyPem })));
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ sets } satisfies DistinctMaterialsFile));
  renameSync(tmp, file);
  say(`issued ${count * generations} distinct certificates in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${file}`);
  return file;
}

export function readDistinctMaterials(file: string): Material[][] {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as DistinctMaterialsFile;
  return doc.sets.map((set) => set.map((m) => ({ chainPem: m.chain, keyPem: m.key })));
}

/**
 * One set's PEM as bytes, outside the V8 heap: one Buffer per set and a table of
 * offsets, no object per secret. The node peer makes each offer's strings from them
 * when it offers, as the sources do. Holding every generation as strings (70 MB for
 * 4 x 10,000), or as two Buffers per secret (80,000 objects), would put in the peer's
 * heap what no production server holds, and make each of its full GCs longer.
 */
export class MaterialBytes {
  private constructor(
    private readonly bytes: Buffer,
    /** Per secret, where its chain ends and where its key ends (the chain starts where the last key ended). */
    private readonly ends: Uint32Array,
  ) {}

  static of(set: readonly Material[]): MaterialBytes {
    let total = 0;
    for (const m of set) total += Buffer.byteLength(m.chainPem) + Buffer.byteLength(m.keyPem);
    const bytes = Buffer.allocUnsafeSlow(total);
    const ends = new Uint32Array(set.length * 2);
    let at = 0;
    set.forEach((m, i) => {
      at += bytes.write(m.chainPem, at);
      ends[2 * i] = at;
      at += bytes.write(m.keyPem, at);
      ends[2 * i + 1] = at;
    });
    return new MaterialBytes(bytes, ends);
  }

  get length(): number {
    return this.ends.length / 2;
  }

  /** Secret i's chain as a new string. */
  chain(i: number): string {
    return this.bytes.toString('utf8', i === 0 ? 0 : this.ends[2 * i - 1], this.ends[2 * i]);
  }

  /** Secret i's key as a new string. */
  key(i: number): string {
    return this.bytes.toString('utf8', this.ends[2 * i], this.ends[2 * i + 1]);
  }
}

export function readDistinctMaterialBytes(file: string): MaterialBytes[] {
  return readDistinctMaterials(file).map((set) => MaterialBytes.of(set));
}

async function rootCa(): Promise<Issuer> {
  const privateKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const now = new Date(Date.now() - 60_000);
  const root = await createCertificate({
    issuer: 'self',
    privateKey,
    subject: { organizations: ['SDS Bench'], commonName: 'SDS Bench Rollover Root CA' },
    notBefore: now,
    notAfter: new Date(now.getTime() + 10 * 365 * DAY),
    isCA: true,
    keyUsages: ['cert sign', 'crl sign'],
  });
  return { certificate: root.certificate, privateKey };
}

/** One intermediate and `count` leaves under it. */
export async function issueGeneration(root: Issuer, generation: number, count: number): Promise<Material[]> {
  const now = new Date(Date.now() - 60_000);
  const interKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const inter = await createCertificate({
    issuer: root,
    publicKey: interKey,
    subject: { organizations: ['SDS Bench'], commonName: `SDS Bench Rollover Intermediate G${generation}` },
    notBefore: now,
    notAfter: new Date(now.getTime() + 5 * 365 * DAY),
    isCA: true,
    maxPathLength: 0,
    keyUsages: ['cert sign', 'crl sign'],
  });
  const issuer: Issuer = { certificate: inter.certificate, privateKey: interKey };
  const out = new Array<Material>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const key = await generatePrivateKey({ algorithm: 'ECDSA' });
      const leaf = await createCertificate({
        issuer,
        publicKey: key,
        subject: { organizations: ['SDS Bench'], commonName: `gw-${i}.bench.example.com` },
        dnsNames: [`gw-${i}.bench.example.com`],
        notBefore: now,
        notAfter: new Date(now.getTime() + 90 * DAY),
        keyUsages: ['digital signature'],
        extKeyUsages: ['server auth'],
      });
      out[i] = { chainPem: leaf.pem + inter.pem, keyPem: encodePrivateKeyPem(key, 'PKCS8') };
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return out;
}

/** For the micro-benchmark: `count` distinct leaves under one fresh intermediate, not cached. */
export async function freshDistinctMaterials(count: number): Promise<Material[]> {
  return issueGeneration(await rootCa(), 0, count);
}
