/**
 * What a source offers the store, before validation. PEM text throughout: that is what
 * Kubernetes Secrets, files and the issuance engine all hold.
 */
export type SecretMaterial = TlsCertificateMaterial | ValidationContextMaterial;

export interface TlsCertificateMaterial {
  kind: 'tls_certificate';
  /** Leaf first, then intermediates. */
  certificateChain: string;
  privateKey: string;
  ocspStaple?: Buffer;
}

export interface ValidationContextMaterial {
  kind: 'validation_context';
  /** One or more CA certificates. */
  trustedCa: string;
  /** PEM CRLs, each issued by a CA of trustedCa (Envoy refuses a CRL without its CA). */
  crl?: string;
  /** Envoy's match_typed_subject_alt_names: the peer must carry one of these SANs. */
  matchSubjectAltNames?: readonly SubjectAltNameMatch[];
}

/** One exact SAN a peer's certificate must carry (DNS names match wildcard certificates). */
export interface SubjectAltNameMatch {
  type: 'DNS' | 'URI';
  value: string;
}

export type SecretKind = SecretMaterial['kind'];

/** Where a secret came from: shown in status and logs, never sent to Envoy. */
export interface SecretOrigin {
  source: 'file' | 'kubernetes' | 'issuer' | 'test';
  /** A path, `namespace/name`, or an issuer's certificate name. */
  ref: string;
}

export interface CertificateFacts {
  subject: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  sha256Fingerprint: string;
}

/** A validated secret as the store holds it. Immutable: a change is a new object. */
export interface StoredSecret {
  readonly name: string;
  readonly kind: SecretKind;
  /** Hash of the content: equal content gives equal versions on every replica. */
  readonly version: string;
  readonly material: SecretMaterial;
  readonly origin: SecretOrigin;
  /** Leaf facts for a certificate; the first CA's for a bundle. */
  readonly facts: CertificateFacts;
  /** Served anyway, but worth a look: expired, not yet valid. */
  readonly warnings: readonly string[];
  readonly updatedAt: Date;
}
