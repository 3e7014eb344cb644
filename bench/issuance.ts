/**
 * Issuance throughput of src/pki alone, in-process: leaf certificates per second
 * from a CA issuer, key generation included (what the issuance engine does per
 * Certificate): generate the leaf key, build and sign the certificate, encode the
 * key as PEM. Several leaves are in flight at once (key generation and signing run
 * on libuv's thread pool), as the engine would issue for many Certificates.
 *
 * Also a node-forge baseline (RSA only: node-forge has no ECDSA certificates),
 * measured only when node-forge is already installed (it arrives with acme-client).
 */
import { createRequire } from 'node:module';
import { createCertificate, encodePrivateKeyPem, generatePrivateKey, type Issuer, type KeySpec } from '../src/pki/index.js';

const DAY = 24 * 3600 * 1000;

export type IssuanceKind = 'ecdsa-p256' | 'rsa-2048';

export interface IssuanceFigure {
  kind: IssuanceKind;
  leaves: number;
  seconds: number;
  perSecond: number;
  inFlight: number;
}

function spec(kind: IssuanceKind): KeySpec {
  return kind === 'ecdsa-p256' ? { algorithm: 'ECDSA', size: 256 } : { algorithm: 'RSA', size: 2048 };
}

async function caIssuer(kind: IssuanceKind): Promise<Issuer> {
  const privateKey = await generatePrivateKey(spec(kind));
  const now = new Date();
  const ca = await createCertificate({
    issuer: 'self',
    privateKey,
    subject: { organizations: ['SDS Bench'], commonName: `SDS Bench Issuing CA (${kind})` },
    notBefore: now,
    notAfter: new Date(now.getTime() + 365 * DAY),
    isCA: true,
    keyUsages: ['cert sign', 'crl sign'],
  });
  return { certificate: ca.certificate, privateKey };
}

async function issueLeaf(issuer: Issuer, kind: IssuanceKind, i: number): Promise<number> {
  const key = await generatePrivateKey(spec(kind));
  const now = new Date();
  const cert = await createCertificate({
    issuer,
    publicKey: key,
    subject: { commonName: `leaf-${i}.bench.example.com` },
    dnsNames: [`leaf-${i}.bench.example.com`],
    notBefore: now,
    notAfter: new Date(now.getTime() + 90 * DAY),
    extKeyUsages: ['server auth'],
  });
  const keyPem = encodePrivateKeyPem(key, 'PKCS8');
  return cert.pem.length + keyPem.length;
}

/**
 * Issues leaves for about `seconds` (at least `minLeaves`), `inFlight` at a time,
 * and returns the rate. The CA is made before the clock starts.
 */
export async function measureIssuance(kind: IssuanceKind, seconds: number, inFlight = 4, minLeaves = 4): Promise<IssuanceFigure> {
  const issuer = await caIssuer(kind);
  await issueLeaf(issuer, kind, -1); // warm-up: JIT, the issuer's cached checks
  let issued = 0;
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline || next < minLeaves) {
      await issueLeaf(issuer, kind, next++);
      issued++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  return { kind, leaves: issued, seconds: elapsed, perSecond: issued / elapsed, inFlight };
}

export interface ForgeFigure {
  version: string;
  kind: 'rsa-2048';
  leaves: number;
  seconds: number;
  perSecond: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- node-forge ships no types here */
/** node-forge's RSA 2048 issuance rate, or undefined when node-forge is not installed. */
export function measureForge(seconds: number, minLeaves = 2): ForgeFigure | undefined {
  const require = createRequire(import.meta.url);
  let forge: any;
  let version = 'unknown';
  try {
    forge = require('node-forge');
    version = (require('node-forge/package.json') as { version?: string }).version ?? version;
  } catch {
    return undefined;
  }
  const pki = forge.pki;
  const now = new Date();
  const caKeys = pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const ca = pki.createCertificate();
  ca.publicKey = caKeys.publicKey;
  ca.serialNumber = '01';
  ca.validity.notBefore = now;
  ca.validity.notAfter = new Date(now.getTime() + 365 * DAY);
  const caSubject = [
    { name: 'organizationName', value: 'SDS Bench' },
    { name: 'commonName', value: 'SDS Bench Issuing CA (forge)' },
  ];
  ca.setSubject(caSubject);
  ca.setIssuer(caSubject);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const issue = (i: number): number => {
    const keys = pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
    const cert = pki.createCertificate();
    cert.publicKey = keys.publicKey;
    cert.serialNumber = `7${forge.util.bytesToHex(forge.random.getBytesSync(15)).slice(1)}`;
    cert.validity.notBefore = new Date();
    cert.validity.notAfter = new Date(Date.now() + 90 * DAY);
    cert.setSubject([{ name: 'commonName', value: `leaf-${i}.bench.example.com` }]);
    cert.setIssuer(ca.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: `leaf-${i}.bench.example.com` }] },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(caKeys.privateKey, forge.md.sha256.create());
    const pem: string = pki.certificateToPem(cert);
    const keyPem: string = pki.privateKeyToPem(keys.privateKey);
    return pem.length + keyPem.length;
  };
  issue(-1);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000 || n < minLeaves) issue(n++);
  const elapsed = (performance.now() - t0) / 1000;
  return { version, kind: 'rsa-2048', leaves: n, seconds: elapsed, perSecond: n / elapsed };
}
/* eslint-enable @typescript-eslint/no-explicit-any */
