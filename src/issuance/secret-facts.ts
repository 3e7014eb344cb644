// Gathering, the step before the policies: what the persisted Secret holds, parsed once
// into plain facts (the leaf's names and validity, the key's type, whether they pair).
// The policies then only compare facts with the spec, and stay pure.

import { createHash } from 'node:crypto';
import {
  certificatesFromPem,
  describeKey,
  parsePrivateKeyPem,
  sameKeyPair,
  summarizeCertificate,
  certificatePublicKey,
  type CertificateSummary,
  type KeyDescription,
} from '../pki/index.js';
import type { CertificateSpec } from './resources.js';

/** A Secret as persisters hold it: Kubernetes-style data keys and annotations. */
export interface PersistedSecret {
  /** `tls.crt`, `tls.key`, `ca.crt` (PEM text). */
  data: Record<string, string>;
  annotations: Record<string, string>;
}

export const ANNOTATIONS = {
  issuerName: 'envoy-sds.io/issuer-name',
  issuerKind: 'envoy-sds.io/issuer-kind',
  certificateName: 'envoy-sds.io/certificate-name',
  /** Hash of the request fields (see requestHash) the certificate was issued for. */
  requestHash: 'envoy-sds.io/request-hash',
  /**
   * The Certificate's status.revision this Secret was issued as: a writer never puts a
   * revision over an equal or later one (see kubernetes-secret-persister.ts).
   */
  revision: 'envoy-sds.io/revision',
  /** The ACME order this certificate came from: that order is finished, never resumed. */
  orderUrl: 'envoy-sds.io/acme-order-url',
} as const;

export interface SecretFacts {
  hasCertificate: boolean;
  hasPrivateKey: boolean;
  /** Undefined when tls.crt is absent or does not parse (see certificateError). */
  leaf: CertificateSummary | undefined;
  certificateError: string | undefined;
  key: KeyDescription | undefined;
  keyError: string | undefined;
  /** PEM label of the key: tells PKCS#1/SEC 1 from PKCS#8. */
  keyPemLabel: string | undefined;
  keyMatchesCertificate: boolean;
  annotations: Record<string, string>;
}

export function secretFacts(secret: PersistedSecret): SecretFacts {
  const certPem = secret.data['tls.crt'] ?? '';
  const keyPem = secret.data['tls.key'] ?? '';
  const facts: SecretFacts = {
    hasCertificate: certPem.trim() !== '',
    hasPrivateKey: keyPem.trim() !== '',
    leaf: undefined,
    certificateError: undefined,
    key: undefined,
    keyError: undefined,
    keyPemLabel: /-----BEGIN ([A-Z ]+)-----/.exec(keyPem)?.[1],
    keyMatchesCertificate: false,
    annotations: secret.annotations,
  };
  let leafCert;
  if (facts.hasCertificate) {
    try {
      leafCert = certificatesFromPem(certPem)[0];
      if (leafCert) facts.leaf = summarizeCertificate(leafCert);
      else facts.certificateError = 'tls.crt holds no certificate';
    } catch (err) {
      facts.certificateError = `tls.crt: ${(err as Error).message}`;
    }
  }
  let key;
  if (facts.hasPrivateKey) {
    try {
      key = parsePrivateKeyPem(keyPem);
      facts.key = describeKey(key);
    } catch (err) {
      facts.keyError = `tls.key: ${(err as Error).message}`; // PkiError messages never quote key bytes
    }
  }
  if (leafCert && key) facts.keyMatchesCertificate = sameKeyPair(key, certificatePublicKey(leafCert));
  return facts;
}

/**
 * The request a certificate is issued for, as a stable hash: a change to any of these
 * fields asks for a new certificate (cert-manager's RequestChanged).
 */
export function requestHash(spec: CertificateSpec): string {
  const sorted = (xs: string[]) => [...xs].sort();
  const canonical = {
    commonName: spec.commonName ?? null,
    dnsNames: sorted(spec.dnsNames),
    ipAddresses: sorted(spec.ipAddresses),
    uris: sorted(spec.uris),
    emailAddresses: sorted(spec.emailAddresses),
    subject: spec.subject ? Object.fromEntries(Object.entries(spec.subject).sort(([a], [b]) => a.localeCompare(b))) : null,
    durationMs: spec.durationMs,
    isCA: spec.isCA,
    usages: spec.usages ? sorted(spec.usages) : null,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 32);
}
