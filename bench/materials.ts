/**
 * The benchmark's TLS material, made with our own src/pki, in the shape of the Go
 * peer's (bench/go/peer/certs.go): root -> intermediate -> leaf, all ECDSA P-256;
 * the secret carries the leaf-first chain (leaf + intermediate) and the leaf's
 * PKCS#8 key.
 */
import { createCertificate, encodePrivateKeyPem, generatePrivateKey, type Issuer } from '../src/pki/index.js';

export interface Material {
  chainPem: string;
  keyPem: string;
}

const DAY = 24 * 3600 * 1000;

export async function newMaterial(generation: number): Promise<Material> {
  const now = new Date(Date.now() - 60_000);
  const [rootKey, interKey, leafKey] = await Promise.all([
    generatePrivateKey({ algorithm: 'ECDSA' }),
    generatePrivateKey({ algorithm: 'ECDSA' }),
    generatePrivateKey({ algorithm: 'ECDSA' }),
  ]);
  const root = await createCertificate({
    issuer: 'self',
    privateKey: rootKey,
    subject: { organizations: ['SDS Bench'], commonName: 'SDS Bench Root CA' },
    notBefore: now,
    notAfter: new Date(now.getTime() + 10 * 365 * DAY),
    isCA: true,
    keyUsages: ['cert sign', 'crl sign'],
  });
  const rootIssuer: Issuer = { certificate: root.certificate, privateKey: rootKey };
  const inter = await createCertificate({
    issuer: rootIssuer,
    publicKey: interKey,
    subject: { organizations: ['SDS Bench'], commonName: `SDS Bench Intermediate CA G${generation % 10}` },
    notBefore: now,
    notAfter: new Date(now.getTime() + 5 * 365 * DAY),
    isCA: true,
    maxPathLength: 0,
    keyUsages: ['cert sign', 'crl sign'],
  });
  const leaf = await createCertificate({
    issuer: { certificate: inter.certificate, privateKey: interKey },
    publicKey: leafKey,
    subject: { organizations: ['SDS Bench'], commonName: 'gateway.bench.example.com' },
    dnsNames: ['gateway.bench.example.com', '*.bench.example.com'],
    notBefore: now,
    notAfter: new Date(now.getTime() + 90 * DAY),
    keyUsages: ['digital signature'],
    extKeyUsages: ['server auth'],
  });
  return { chainPem: leaf.pem + inter.pem, keyPem: encodePrivateKeyPem(leafKey, 'PKCS8') };
}

/**
 * `count` materials whose PEM sizes are identical (ECDSA signatures vary by a byte
 * or two; re-issue until they match), so a rotation changes content, not size.
 */
export async function newMaterialSets(count: number): Promise<Material[]> {
  const first = await newMaterial(0);
  const sets = [first];
  for (let tries = 0; sets.length < count; tries++) {
    if (tries > 1000) throw new Error('could not issue same-size certificate sets');
    const m = await newMaterial(sets.length);
    if (m.chainPem.length === first.chainPem.length && m.keyPem.length === first.keyPem.length) sets.push(m);
  }
  return sets;
}
