// A Certificate's spec in the PKI toolkit's terms (subject, SANs, CA flag, usages), shared
// by the backends that sign locally and by the CSR sent to an ACME CA.

import { splitUsages, type CertificateTemplate, type DistinguishedName } from '../../pki/index.js';
import type { CertificateSpec } from '../resources.js';

export type NamesAndUsages = Omit<CertificateTemplate, 'notBefore' | 'notAfter' | 'serialNumber'>;

export function templateFor(spec: CertificateSpec): NamesAndUsages {
  const subject: DistinguishedName = { ...(spec.subject ?? {}) };
  if (spec.commonName !== undefined) subject.commonName = spec.commonName;
  const usages = spec.usages ? splitUsages(spec.usages) : undefined;
  return {
    subject,
    dnsNames: spec.dnsNames,
    ipAddresses: spec.ipAddresses,
    uris: spec.uris,
    emailAddresses: spec.emailAddresses,
    isCA: spec.isCA,
    ...(usages ? { keyUsages: usages.keyUsages, extKeyUsages: usages.extKeyUsages } : {}),
  };
}
