// The issuance resources after validation, in cert-manager's shape (Issuer, ClusterIssuer,
// Certificate) with its defaults applied. Shapes in schema/, parsing in parse-*.ts; everything else in
// the engine reads only these types.

import type { DistinguishedName } from '../pki/index.js';
import type { DnsServer } from './solvers/rfc2136.js';

export const API_GROUP = 'envoy-sds.io';
export const API_VERSION = `${API_GROUP}/v1alpha1`;

export type IssuerKind = 'Issuer' | 'ClusterIssuer';

/** A key inside a Secret in the same namespace as whatever refers to it. */
export interface SecretKeySelector {
  name: string;
  key: string;
}

/** Identifies an Issuer (namespaced) or ClusterIssuer: `Issuer/ns/name`, `ClusterIssuer/name`. */
export function issuerId(kind: IssuerKind, name: string, namespace: string | undefined): string {
  return kind === 'ClusterIssuer' ? `ClusterIssuer/${name}` : `Issuer/${namespace}/${name}`;
}

export interface IssuerResource {
  kind: IssuerKind;
  name: string;
  /** Undefined for a ClusterIssuer. */
  namespace: string | undefined;
  /**
   * Where this issuer's Secrets (CA key pair, ACME account key, TSIG secret) live: its
   * own namespace, or the cluster resource namespace for a ClusterIssuer (cert-manager's
   * `--cluster-resource-namespace`).
   */
  secretNamespace: string;
  spec: IssuerSpec;
  /** Multi-tenant limits (ClusterIssuer only; our extension to cert-manager's shape). */
  restrictions: IssuerRestrictions | undefined;
}

export type IssuerSpec =
  | { type: 'selfSigned' }
  /** `serveCAPrivateKey`: our extension; the CA's Secret is served with its key only when true. */
  | { type: 'ca'; secretName: string; serveCAPrivateKey: boolean }
  | { type: 'acme'; acme: AcmeIssuerSpec }
  /** A custom resource whose spec does not parse: shown Ready=False, its Certificates wait. */
  | { type: 'invalid'; message: string };

export interface AcmeIssuerSpec {
  server: string;
  email: string | undefined;
  privateKeySecretRef: SecretKeySelector;
  externalAccountBinding: { keyID: string; keySecretRef: SecretKeySelector } | undefined;
  /** PEM bundle to trust for the ACME server's HTTPS (from `caBundle` or `caBundleFile`). */
  caBundlePem: string | undefined;
  skipTLSVerify: boolean;
  preferredChain: string | undefined;
  disableAccountKeyGeneration: boolean;
  solvers: AcmeSolver[];
}

export interface SolverSelector {
  dnsNames: string[];
  dnsZones: string[];
  matchLabels: Record<string, string>;
}

export type AcmeSolver =
  | { type: 'http01'; selector: SolverSelector | undefined }
  | {
      type: 'dns01';
      selector: SolverSelector | undefined;
      rfc2136: Rfc2136Solver;
      /**
       * cert-manager's cnameStrategy: `Follow` follows a CNAME at `_acme-challenge.<name>`
       * (into another zone, often one whose update key is all the solver holds) and writes
       * the TXT record at its target; `None` (default) writes at `_acme-challenge.<name>`.
       */
      cnameStrategy: 'None' | 'Follow';
    };

export interface Rfc2136Solver {
  nameserver: DnsServer;
  tsigKeyName: string;
  /** As our TSIG client names it: `hmac-sha256`... */
  tsigAlgorithm: string;
  /** Where the base64 TSIG secret is read from; never the secret itself. */
  tsigSecret: { secretRef: SecretKeySelector } | { file: string };
}

export interface IssuerRestrictions {
  /** Namespace names or `prefix-*` patterns a Certificate must be in. Empty: any. */
  namespaces: string[];
  /**
   * DNS names a Certificate may ask for: exact names, or `*.example.com` for any name
   * under example.com. Empty: any. When set, IP, URI and email SANs and CA certificates
   * are refused, since they cannot be checked against DNS patterns.
   */
  dnsNames: string[];
}

export type KeyAlgorithm = 'RSA' | 'ECDSA' | 'Ed25519';

export interface PrivateKeySpec {
  algorithm: KeyAlgorithm;
  /** RSA bits or ECDSA curve size; undefined for Ed25519. */
  size: number | undefined;
  encoding: 'PKCS1' | 'PKCS8';
  rotationPolicy: 'Always' | 'Never';
}

export interface CertificateSpec {
  secretName: string;
  issuerRef: { name: string; kind: IssuerKind };
  commonName: string | undefined;
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
  emailAddresses: string[];
  subject: Omit<DistinguishedName, 'commonName'> | undefined;
  durationMs: number;
  /** cert-manager: `renewBefore` or `renewBeforePercentage`; unset means one third. */
  renewBefore: { ms: number } | { percentage: number } | undefined;
  isCA: boolean;
  /**
   * Our extension: a CA's Secret (isCA, or an issuer's ca.secretName) is served only as its
   * `-cacert` bundle unless this is true. Envoy never needs a CA's key.
   */
  serveCAPrivateKey: boolean;
  /** Undefined: the toolkit's defaults (digital signature, plus key encipherment for RSA). */
  usages: string[] | undefined;
  privateKey: PrivateKeySpec;
}

export interface CertificateResource {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** `namespace/name`: how status, files and `envoy-sds renew` name it. */
  id: string;
  spec: CertificateSpec;
}

/** SDS names the engine's output is served under: `secretName` and `secretName-cacert`. */
export function caSecretName(secretName: string): string {
  return `${secretName}-cacert`;
}
