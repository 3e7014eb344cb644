// "Should this certificate be (re-)issued?" and "is it ready?" as chains of pure
// functions named as sentences, after cert-manager's trigger and readiness policies.
// Each returns a reason (cert-manager's words, shown in the Ready/Issuing conditions)
// and a message, or undefined when it has nothing to say. The clock is an input.

import type { CertificateStatus } from './certificate-status.js';
import { renewalTime } from './renewal-time.js';
import type { CertificateResource } from './resources.js';
import { ANNOTATIONS, requestHash, type SecretFacts } from './secret-facts.js';

export interface PolicyInput {
  certificate: CertificateResource;
  /** Undefined: the Secret does not exist. */
  secret: SecretFacts | undefined;
  status: CertificateStatus;
  now: Date;
  /** Renewal jitter fraction (see renewal-time.ts). */
  jitter: number;
}

export interface PolicyResult {
  reason: string;
  message: string;
}

export type Policy = (input: PolicyInput) => PolicyResult | undefined;

export const SecretDoesNotExist: Policy = ({ secret, certificate }) =>
  secret === undefined
    ? { reason: 'DoesNotExist', message: `Issuing certificate as Secret "${certificate.spec.secretName}" does not exist` }
    : undefined;

export const SecretIsMissingData: Policy = ({ secret }) => {
  if (!secret) return undefined;
  if (!secret.hasCertificate)
    return { reason: 'MissingData', message: 'Issuing certificate as Secret does not contain a certificate (tls.crt)' };
  if (!secret.hasPrivateKey)
    return { reason: 'MissingData', message: 'Issuing certificate as Secret does not contain a private key (tls.key)' };
  return undefined;
};

export const SecretContainsInvalidData: Policy = ({ secret }) => {
  const problem = secret?.certificateError ?? secret?.keyError;
  return problem ? { reason: 'InvalidValue', message: `Issuing certificate as Secret contains invalid data: ${problem}` } : undefined;
};

export const SecretPublicKeysDiffer: Policy = ({ secret }) =>
  secret?.leaf && secret.key && !secret.keyMatchesCertificate
    ? { reason: 'InvalidKeyPair', message: 'Issuing certificate as Secret contains a private key that does not match the certificate' }
    : undefined;

/** SpecChanged (key): algorithm, size or encoding differ from spec.privateKey. */
export const SecretPrivateKeyMismatchesSpec: Policy = ({ secret, certificate }) => {
  const key = secret?.key;
  if (!key) return undefined;
  const want = certificate.spec.privateKey;
  const have = key.algorithm === 'RSA' ? `RSA ${key.size}` : key.algorithm === 'ECDSA' ? `ECDSA ${key.size}` : 'Ed25519';
  const wanted = want.algorithm === 'Ed25519' ? 'Ed25519' : `${want.algorithm} ${want.size}`;
  if (have !== wanted)
    return { reason: 'SecretMismatch', message: `Issuing certificate as the private key is ${have} and the spec asks for ${wanted}` };
  // PKCS#1 (and SEC 1 for ECDSA) have their own PEM labels; Ed25519 exists only in PKCS#8.
  if (key.algorithm !== 'Ed25519' && secret.keyPemLabel !== undefined) {
    const isPkcs8 = secret.keyPemLabel === 'PRIVATE KEY';
    if (isPkcs8 !== (want.encoding === 'PKCS8')) {
      return { reason: 'SecretMismatch', message: `Issuing certificate as the private key encoding is not ${want.encoding}` };
    }
  }
  return undefined;
};

/** IssuerChanged: the Secret records another issuer. Only checked when recorded, as cert-manager does. */
export const SecretIssuerAnnotationsMismatch: Policy = ({ secret, certificate }) => {
  const a = secret?.annotations ?? {};
  const name = a[ANNOTATIONS.issuerName];
  const kind = a[ANNOTATIONS.issuerKind];
  if (name === undefined && kind === undefined) return undefined;
  const ref = certificate.spec.issuerRef;
  if (name !== ref.name || kind !== ref.kind) {
    return {
      reason: 'IncorrectIssuer',
      message: `Issuing certificate as Secret was previously issued by ${kind ?? '?'} "${name ?? '?'}", not ${ref.kind} "${ref.name}"`,
    };
  }
  return undefined;
};

/** SpecChanged (names): the certificate's SANs are not the ones the spec lists. */
export const SecretCertificateNamesMismatch: Policy = ({ secret, certificate }) => {
  const leaf = secret?.leaf;
  if (!leaf) return undefined;
  const s = certificate.spec;
  const lower = (xs: readonly string[]) => xs.map((x) => x.toLowerCase());
  const diffs: string[] = [];
  const compare = (what: string, have: string[], want: string[]) => {
    const h = new Set(have);
    const w = new Set(want);
    const missing = [...w].filter((x) => !h.has(x));
    const extra = [...h].filter((x) => !w.has(x));
    if (missing.length || extra.length) {
      diffs.push(
        `${what}${missing.length ? ` missing [${missing.join(', ')}]` : ''}${extra.length ? ` unexpected [${extra.join(', ')}]` : ''}`,
      );
    }
  };
  compare('DNS names', lower(leaf.dnsNames), lower(s.dnsNames));
  compare('IP addresses', leaf.ipAddresses, s.ipAddresses);
  compare('URIs', leaf.uris, s.uris);
  compare('email addresses', lower(leaf.emailAddresses), lower(s.emailAddresses));
  return diffs.length
    ? { reason: 'SecretMismatch', message: `Issuing certificate as the existing certificate does not match the spec: ${diffs.join('; ')}` }
    : undefined;
};

/** SpecChanged (request): subject, usages, isCA or duration changed since issuance. */
export const CurrentRequestMismatchesSpec: Policy = ({ secret, certificate }) => {
  const recorded = secret?.annotations[ANNOTATIONS.requestHash];
  if (recorded === undefined || recorded === requestHash(certificate.spec)) return undefined;
  return {
    reason: 'RequestChanged',
    message:
      'Issuing certificate as the spec changed since the current certificate was issued (common name, subject, usages, isCA or duration)',
  };
};

export const ForcedRenewal: Policy = ({ status }) =>
  status.renewalRequestedAt !== undefined
    ? { reason: 'ManuallyTriggered', message: `Re-issuance requested at ${status.renewalRequestedAt}` }
    : undefined;

export const CurrentCertificateHasExpired: Policy = ({ secret, now }) => {
  const leaf = secret?.leaf;
  return leaf && now.getTime() >= leaf.notAfter.getTime()
    ? { reason: 'Expired', message: `Certificate expired on ${leaf.notAfter.toISOString()}` }
    : undefined;
};

export const CurrentCertificateNearingExpiry: Policy = (input) => {
  const leaf = input.secret?.leaf;
  if (!leaf) return undefined;
  const due = certificateRenewalTime(input);
  return due && input.now.getTime() >= due.getTime()
    ? { reason: 'Renewing', message: `Renewing certificate as renewal was scheduled at ${due.toISOString()}` }
    : undefined;
};

/** When the current certificate is due for renewal (undefined without a parsable certificate). */
export function certificateRenewalTime(input: Pick<PolicyInput, 'secret' | 'certificate' | 'jitter'>): Date | undefined {
  const leaf = input.secret?.leaf;
  if (!leaf) return undefined;
  return renewalTime({
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    renewBefore: input.certificate.spec.renewBefore,
    jitter: input.jitter,
    seed: input.certificate.id,
  });
}

/** Why to issue now, in cert-manager's order; the first that speaks wins. */
export const TRIGGER_POLICIES: readonly Policy[] = [
  SecretDoesNotExist,
  SecretIsMissingData,
  SecretContainsInvalidData,
  SecretPublicKeysDiffer,
  SecretPrivateKeyMismatchesSpec,
  SecretIssuerAnnotationsMismatch,
  SecretCertificateNamesMismatch,
  CurrentRequestMismatchesSpec,
  ForcedRenewal,
  CurrentCertificateHasExpired,
  CurrentCertificateNearingExpiry,
];

/** Why the served certificate is not what the spec asks for (renewal being due is not one). */
export const READINESS_POLICIES: readonly Policy[] = [
  SecretDoesNotExist,
  SecretIsMissingData,
  SecretContainsInvalidData,
  SecretPublicKeysDiffer,
  SecretPrivateKeyMismatchesSpec,
  SecretIssuerAnnotationsMismatch,
  SecretCertificateNamesMismatch,
  CurrentRequestMismatchesSpec,
  CurrentCertificateHasExpired,
];

export function evaluate(chain: readonly Policy[], input: PolicyInput): PolicyResult | undefined {
  for (const policy of chain) {
    const result = policy(input);
    if (result) return result;
  }
  return undefined;
}
