// selfSigned: the certificate is signed by its own key. Its `ca.crt` is the certificate
// itself, as cert-manager writes it, which makes a self-signed CA Certificate the usual
// root of a `ca` issuer.

import { createCertificate } from '../../pki/index.js';
import { templateFor } from './certificate-template.js';
import type { IssuerReadiness } from '../issuer-status.js';
import type { CertificateIssuer, IssueRequest, IssuedBundle } from './issuer.js';

export class SelfSignedIssuer implements CertificateIssuer {
  async issue({ certificate, privateKey, now }: IssueRequest): Promise<IssuedBundle> {
    const cert = await createCertificate({
      ...templateFor(certificate.spec),
      issuer: 'self',
      privateKey,
      notBefore: now,
      notAfter: new Date(now.getTime() + certificate.spec.durationMs),
    });
    return { chainPem: cert.pem, caPem: cert.pem };
  }

  readiness(): Promise<IssuerReadiness> {
    return Promise.resolve({ ready: true, reason: 'IsReady', message: 'Self-signed issuer is ready' });
  }
}
