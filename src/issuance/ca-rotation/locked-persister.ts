// The engine's persister with one lock per Secret: a rotation rewrites `ca.crt` of Secrets
// that their controllers may be re-issuing at the same moment. Its read-modify-write
// (`update`) and every writeSecret take the Secret's lock, so a freshly issued leaf is
// never written back over with the one read a moment before. (Across replicas only the
// lease holder writes; in Kubernetes the revision check stays the last word.)

import type { CertificateStatus } from '../certificate-status.js';
import type { IssuerStatus } from '../issuer-status.js';
import type { CertificatePersister, OrderState, PersistedSecret, SecretFiles } from '../persisters/persister.js';
import type { CertificateResource, IssuerResource } from '../resources.js';

export class LockedPersister implements CertificatePersister {
  private readonly tails = new Map<string, Promise<unknown>>();
  readonly writeIssuerStatus?: (issuer: IssuerResource, status: IssuerStatus) => Promise<void>;
  readonly secretFiles?: (namespace: string, name: string) => SecretFiles;

  constructor(private readonly inner: CertificatePersister) {
    if (inner.writeIssuerStatus) this.writeIssuerStatus = (i, s) => inner.writeIssuerStatus!(i, s);
    if (inner.secretFiles) this.secretFiles = (ns, name) => inner.secretFiles!(ns, name);
  }

  /** Reads the Secret, lets `change` compute the next one (undefined: leave it), writes it; all under its lock. */
  update(namespace: string, name: string, change: (current: PersistedSecret | undefined) => PersistedSecret | undefined): Promise<boolean> {
    return this.locked(namespace, name, async () => {
      const next = change(await this.inner.readSecret(namespace, name));
      if (!next) return false;
      await this.inner.writeSecret(namespace, name, next);
      return true;
    });
  }

  readSecret(namespace: string, name: string): Promise<PersistedSecret | undefined> {
    return this.inner.readSecret(namespace, name);
  }
  writeSecret(namespace: string, name: string, secret: PersistedSecret): Promise<void> {
    return this.locked(namespace, name, () => this.inner.writeSecret(namespace, name, secret));
  }
  readNextPrivateKey(cert: CertificateResource): Promise<string | undefined> {
    return this.inner.readNextPrivateKey(cert);
  }
  writeNextPrivateKey(cert: CertificateResource, pem: string): Promise<void> {
    return this.inner.writeNextPrivateKey(cert, pem);
  }
  deleteNextPrivateKey(cert: CertificateResource): Promise<void> {
    return this.inner.deleteNextPrivateKey(cert);
  }
  readOrder(cert: CertificateResource): Promise<OrderState | undefined> {
    return this.inner.readOrder(cert);
  }
  writeOrder(cert: CertificateResource, order: OrderState): Promise<void> {
    return this.inner.writeOrder(cert, order);
  }
  deleteOrder(cert: CertificateResource): Promise<void> {
    return this.inner.deleteOrder(cert);
  }
  readStatus(cert: CertificateResource): Promise<CertificateStatus | undefined> {
    return this.inner.readStatus(cert);
  }
  writeStatus(cert: CertificateResource, status: CertificateStatus): Promise<void> {
    return this.inner.writeStatus(cert, status);
  }

  private locked<T>(namespace: string, name: string, fn: () => Promise<T>): Promise<T> {
    const key = `${namespace}/${name}`;
    const run = (this.tails.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }
}
