// A CA issuer under rotation: signs as before (with whatever key pair the CA Secret holds,
// which the rotation swaps in the Reissue phase), but the `ca.crt` it hands out is the
// rotation's bundle of the moment, so a leaf issued mid-rotation never narrows the trust
// its Secret's `-cacert` name gives.

import type { IssuerReadiness } from '../issuer-status.js';
import type { CertificateIssuer, IssueRequest, IssuedBundle } from '../issuers/issuer.js';

export class RotatingIssuer implements CertificateIssuer {
  constructor(
    private readonly inner: CertificateIssuer,
    /** The bundle while a rotation says so; undefined: the inner issuer's own ca.crt. */
    private readonly bundle: () => string | undefined,
  ) {}

  async issue(request: IssueRequest): Promise<IssuedBundle> {
    const issued = await this.inner.issue(request);
    const bundle = this.bundle();
    return bundle ? { ...issued, caPem: bundle } : issued;
  }

  readiness(): Promise<IssuerReadiness> {
    return this.inner.readiness();
  }
}
