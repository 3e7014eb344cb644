/**
 * Where the store's door spends its time, per distinct certificate: a quick
 * single-process micro-benchmark (no servers), run before and after a change to
 * src/pki/validate.ts or src/store/validate-material.ts.
 *
 *   npm run build && node dist/bench/validation-cost.js [--count 1000] [--bundle 426]
 *
 * It issues `count` distinct ECDSA P-256 leaves under one intermediate (the shape of
 * a CA rollover) and times, per leaf + intermediate chain: the whole door
 * (validateMaterial), then each step on its own (PEM, DER fields, OpenSSL parse,
 * key parse, key match, signature check, summary). Then a CA bundle of `bundle`
 * distinct CA certificates (validateCaBundle), per certificate: first sight, then
 * the same bundle again with one certificate more (what a trust bundle update is).
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { parseArgs } from 'node:util';
import { readCertificateFields } from '../src/pki/certificate-fields.js';
import { createCertificate, generatePrivateKey, parsePemBlocks, parsePrivateKeyPem, publicKeyDer } from '../src/pki/index.js';
import { summarizeFields } from '../src/pki/summary.js';
import { validateMaterial } from '../src/store/validate-material.js';
import { freshDistinctMaterials } from './distinct-materials.js';
import type { Material } from './materials.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '1000' }, bundle: { type: 'string', default: '426' } },
  strict: true,
});
const count = Number(values.count);
const bundleSize = Number(values.bundle);

/**
 * CPU time (user + system of the process) and wall time per item. On a shared
 * machine the CPU figure is the one to compare: wall time includes waiting for a core.
 */
function perItem(label: string, items: number, fn: () => void): number {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = ((performance.now() - t0) * 1000) / items;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / items;
  process.stdout.write(`${label.padEnd(62)} ${cpu.toFixed(1).padStart(8)} µs CPU ${wall.toFixed(1).padStart(8)} µs wall\n`);
  return cpu;
}

async function caBundlePem(n: number): Promise<string> {
  let pem = '';
  const keys = await Promise.all(Array.from({ length: n }, () => generatePrivateKey({ algorithm: 'ECDSA' })));
  const now = new Date();
  for (let i = 0; i < n; i++) {
    const ca = await createCertificate({
      issuer: 'self',
      privateKey: keys[i]!,
      subject: { commonName: `Bundle CA ${i}` },
      notBefore: now,
      notAfter: new Date(now.getTime() + 365 * 86400_000),
      isCA: true,
      keyUsages: ['cert sign'],
    });
    pem += ca.pem;
  }
  return pem;
}

async function main(): Promise<void> {
  process.stdout.write(`issuing ${count} distinct leaves (one intermediate) and a ${bundleSize}-CA bundle...\n`);
  const materials: Material[] = await freshDistinctMaterials(count);
  const bundle = await caBundlePem(bundleSize);
  const now = new Date();
  // Warm up JIT and OpenSSL tables on copies of the first few (their content is then
  // seen again below: use materials past the warm-up for the figures).
  const warm = Math.min(50, Math.floor(count / 4));
  for (const m of materials.slice(0, warm)) {
    validateMaterial({ kind: 'tls_certificate', certificateChain: m.chainPem, privateKey: m.keyPem }, now);
  }
  const rest = materials.slice(warm);
  const n = rest.length;
  process.stdout.write(`\nper leaf + intermediate chain (ECDSA P-256), ${n} distinct leaves, node ${process.version}\n`);
  perItem('store door: validateMaterial (whole)', n, () => {
    for (const m of rest) {
      validateMaterial({ kind: 'tls_certificate', certificateChain: m.chainPem, privateKey: m.keyPem }, now);
    }
  });

  // The steps on their own, as the door did them before caching CAs.
  const blocks = rest.map((m) => parsePemBlocks(m.chainPem));
  perItem('  PEM parse of the chain (2 blocks)', n, () => {
    for (const m of rest) parsePemBlocks(m.chainPem);
  });
  perItem('  DER fields, 2 certificates', n, () => {
    for (const b of blocks) for (const x of b) readCertificateFields(x.der);
  });
  const natives = blocks.map((b) => b.map((x) => new X509Certificate(x.der)));
  perItem('  OpenSSL X509Certificate + publicKey, 2 certificates', n, () => {
    for (const b of blocks) for (const x of b) void new X509Certificate(x.der).publicKey;
  });
  perItem('    of which the intermediate (same content every time)', n, () => {
    for (const b of blocks) void new X509Certificate(b[1]!.der).publicKey;
  });
  const keys = rest.map((m) => parsePrivateKeyPem(m.keyPem));
  perItem('  private key PEM parse (createPrivateKey)', n, () => {
    for (const m of rest) parsePrivateKeyPem(m.keyPem);
  });
  perItem('  key match: SPKI export of key and of leaf key', n, () => {
    for (let i = 0; i < n; i++) publicKeyDer(keys[i]!).equals(publicKeyDer(natives[i]![0]!.publicKey));
  });
  perItem('  key match alternative: createPublicKey(key).equals(leaf key)', n, () => {
    for (let i = 0; i < n; i++) createPublicKey(keys[i]!).equals(natives[i]![0]!.publicKey);
  });
  perItem('  signature: leaf verified with the intermediate key', n, () => {
    for (const [leaf, inter] of natives) leaf!.verify(inter!.publicKey);
  });
  const fields = blocks.map((b) => readCertificateFields(b[0]!.der));
  perItem('  summary of the leaf (names, SANs, fingerprints)', n, () => {
    for (let i = 0; i < n; i++) summarizeFields(blocks[i]![0]!.der, fields[i]!);
  });

  process.stdout.write(`\nCA bundle of ${bundleSize} distinct self-signed CAs (${bundle.length} B)\n`);
  perItem('validateMaterial (validation_context), per certificate', bundleSize, () => {
    validateMaterial({ kind: 'validation_context', trustedCa: bundle }, now, { maxBytes: 4 * 1024 * 1024 });
  });
  const updated = bundle + (await caBundlePem(1));
  perItem('the same bundle + 1 new CA (an update), per bundle', 1, () => {
    validateMaterial({ kind: 'validation_context', trustedCa: updated }, now, { maxBytes: 4 * 1024 * 1024 });
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
