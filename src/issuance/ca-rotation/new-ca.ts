// The CA a rotation moves to. When a Certificate makes the CA Secret (the usual self-signed
// root), the successor is that Certificate issued again with a fresh key by its own issuer,
// so it has exactly the profile the operator declared. A CA Secret put there by hand gets a
// self-signed successor with the old CA's subject, key type and lifetime; an intermediate
// nobody here makes has no successor the server could sign, and the rotation says so.

import {
  certificatesFromPem,
  createCertificate,
  describeKey,
  encodePrivateKeyPem,
  generatePrivateKey,
  parsePrivateKeyPem,
  validateTlsCertificate,
  type KeySpec,
} from '../../pki/index.js';
import { isSelfSigned, splitCertificates } from '../../pki/ca-bundle.js';
import type { CertificateIssuer } from '../issuers/issuer.js';
import type { CertificateResource } from '../resources.js';

export interface NewCa {
  /** The CA Secret's next tls.crt: the new CA first (then its intermediates, if any). */
  chainPem: string;
  keyPem: string;
  /** What subscribers must trust for leaves the new CA signs. */
  trustPem: string;
}

/** The trust anchors of a CA key pair: its self-signed top, else the Secret's ca.crt. */
export function trustAnchorsOf(chainPem: string, caPem: string | undefined): string {
  const blocks = splitCertificates(chainPem);
  const last = blocks.at(-1);
  if (last && isSelfSigned(last)) return last.endsWith('\n') ? last : `${last}\n`;
  return caPem ?? last ?? '';
}

/** The CA Certificate issued again by its issuer, with a key generated here. */
export async function successorFromCertificate(
  cert: CertificateResource,
  backend: CertificateIssuer,
  now: Date,
  signal: AbortSignal,
): Promise<NewCa> {
  const spec = cert.spec.privateKey;
  const key = await generatePrivateKey({ algorithm: spec.algorithm, size: spec.size } as KeySpec);
  const bundle = await backend.issue({ certificate: cert, privateKey: key, now, signal });
  const keyPem = encodePrivateKeyPem(key, spec.encoding);
  validateTlsCertificate({ chainPem: bundle.chainPem, keyPem, now });
  return { chainPem: bundle.chainPem, keyPem, trustPem: trustAnchorsOf(bundle.chainPem, bundle.caPem) };
}

/** A self-signed CA like the old one: same subject, key type and lifetime, new key and serial. */
export async function successorLike(oldChainPem: string, oldKeyPem: string, now: Date): Promise<NewCa> {
  const [old] = certificatesFromPem(oldChainPem);
  if (!old) throw new Error('the CA Secret holds no certificate');
  const oldPem = splitCertificates(oldChainPem)[0] ?? '';
  if (!isSelfSigned(oldPem)) {
    throw new Error(
      'the CA Secret holds an intermediate CA that no Certificate here makes; declare the Certificate that issues it, or rotate its parent',
    );
  }
  const d = describeKey(parsePrivateKeyPem(oldKeyPem));
  const spec: KeySpec = d.algorithm === 'Ed25519' ? { algorithm: 'Ed25519' } : ({ algorithm: d.algorithm, size: d.size } as KeySpec);
  const key = await generatePrivateKey(spec);
  const lifetime = old.notAfter.getTime() - old.notBefore.getTime();
  const cert = await createCertificate({
    subject: { der: new Uint8Array(old.subjectName.toArrayBuffer()) },
    isCA: true,
    issuer: 'self',
    privateKey: key,
    notBefore: now,
    notAfter: new Date(now.getTime() + lifetime),
  });
  const keyPem = encodePrivateKeyPem(key, /BEGIN (RSA|EC) PRIVATE KEY/.test(oldKeyPem) ? 'PKCS1' : 'PKCS8');
  return { chainPem: cert.pem, keyPem, trustPem: cert.pem };
}
