// ca: signs with a key pair from a Secret (`tls.crt` + `tls.key`, as a CA Certificate
// issued here writes it, or files put in the data directory). Like cert-manager, the
// leaf never outlives any CA of its chain (notAfter is clamped to the earliest notAfter
// of tls.crt and ca.crt) and never starts before its issuer (notBefore is clamped to
// the issuing certificate's); `tls.crt` carries the CA chain without its self-signed
// root, and `ca.crt` is that root (or the Secret's own ca.crt for an intermediate).

import { X509Certificate } from 'node:crypto';
import { isSelfSigned } from '../../pki/ca-bundle.js';
import { certificatesFromPem, createCertificate, isPkiError, issuerFromPem, toPem } from '../../pki/index.js';
import type { CertificatePersister } from '../persisters/persister.js';
import type { IssuerResource } from '../resources.js';
import { templateFor } from './certificate-template.js';
import type { IssuerReadiness } from '../issuer-status.js';
import { IssuerNotReadyError, type CertificateIssuer, type IssueRequest, type IssuedBundle } from './issuer.js';

export class CaIssuer implements CertificateIssuer {
  constructor(
    private readonly resource: IssuerResource & { spec: { type: 'ca' } },
    private readonly persister: CertificatePersister,
  ) {}

  /** The CA key pair and its chain from the Secret; IssuerNotReadyError (with cert-manager's reason) when unusable. */
  private async load() {
    const ns = this.resource.secretNamespace;
    const name = this.resource.spec.secretName;
    const secret = await this.persister.readSecret(ns, name);
    const certPem = secret?.data['tls.crt'];
    const keyPem = secret?.data['tls.key'];
    if (!secret || !certPem || !keyPem) {
      throw new IssuerNotReadyError(`CA Secret ${ns}/${name} does not exist or lacks tls.crt/tls.key`, 'ErrGetKeyPair');
    }
    try {
      const caChain = certificatesFromPem(certPem);
      const signer = issuerFromPem(certPem, keyPem);
      // Only the anchor above this chain bounds it: during a CA rotation ca.crt holds the
      // other CA too, whose lifetime says nothing about this one's leaves.
      const top = new X509Certificate(Buffer.from(caChain.at(-1)!.rawData));
      const trusted = (secret.data['ca.crt'] ? certificatesFromPem(secret.data['ca.crt']) : []).filter((t) =>
        issued(top, new X509Certificate(Buffer.from(t.rawData))),
      );
      return { secret, caChain, signer, trusted, where: `${ns}/${name}` };
    } catch (err) {
      // PkiError messages name positions and subjects, never key bytes.
      if (isPkiError(err))
        throw new IssuerNotReadyError(`CA Secret ${ns}/${name} is not a usable CA key pair: ${err.message}`, 'ErrInvalidKeyPair');
      throw err;
    }
  }

  async readiness(): Promise<IssuerReadiness> {
    try {
      const { signer, where } = await this.load();
      const notAfter = signer.certificate.notAfter;
      if (notAfter.getTime() <= Date.now())
        return {
          ready: false,
          reason: 'ErrInvalidKeyPair',
          message: `CA certificate in Secret ${where} expired at ${notAfter.toISOString()}`,
        };
      return { ready: true, reason: 'KeyPairVerified', message: 'Signing CA verified' };
    } catch (err) {
      if (err instanceof IssuerNotReadyError) return { ready: false, reason: err.reason, message: err.message };
      return { ready: false, reason: 'ErrGetKeyPair', message: (err as Error).message };
    }
  }

  async issue({ certificate, privateKey, now }: IssueRequest): Promise<IssuedBundle> {
    const { secret, caChain, signer, trusted, where } = await this.load();
    const chainNotAfter = Math.min(...[...caChain, ...trusted].map((c) => c.notAfter.getTime()));
    const notBefore = new Date(Math.max(now.getTime(), signer.certificate.notBefore.getTime()));
    const notAfter = new Date(Math.min(now.getTime() + certificate.spec.durationMs, chainNotAfter));
    if (notAfter.getTime() <= notBefore.getTime()) {
      throw new IssuerNotReadyError(
        `CA Secret ${where}: its chain is not valid after ${notBefore.toISOString()} (earliest notAfter ${new Date(chainNotAfter).toISOString()})`,
      );
    }
    const leaf = await createCertificate({ ...templateFor(certificate.spec), issuer: signer, publicKey: privateKey, notBefore, notAfter });
    const pems = caChain.map((c) => toPem('CERTIFICATE', new Uint8Array(c.rawData)));
    const last = pems.at(-1)!;
    const rootIsLast = isSelfSigned(last);
    const chain = [leaf.pem, ...(rootIsLast ? pems.slice(0, -1) : pems)];
    const caPem = rootIsLast ? last : (secret.data['ca.crt'] ?? last);
    return { chainPem: chain.join(''), caPem };
  }
}

function issued(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}
