// The persister of Kubernetes mode: issued material in Kubernetes Secrets, which the
// Kubernetes source watches and serves like any other Secret (kubernetes://ns/name and
// kubernetes://ns/name-cacert), so a rotation by the engine takes the same path as one
// by cert-manager or kubectl.
//
//   <secretName>                     type kubernetes.io/tls: tls.crt, tls.key, ca.crt;
//                                    annotations envoy-sds.io/{certificate-name,
//                                    issuer-name, issuer-kind, request-hash, revision}
//   <certificate>-envoy-sds-state    type Opaque, one per Certificate: next.key (the key
//                                    persisted before its CSR leaves), order.json (an
//                                    ACME order in progress), status.json (the status)
//
// The engine's own state is a separate Secret rather than annotations on the served one:
// the next key must never be visible next to the current certificate (a reader of the
// served Secret would see a key that matches nothing), and it is written before the
// served Secret may even exist. It holds none of the TLS data keys, so the source skips
// it. Status lives there too while Certificates come from the config file (they have no
// status subresource); every replica reads it, so a new leader continues the backoff and
// the revision count where the old one stopped.
//
// Every write is a read-modify-write with the object's resourceVersion: a 409 Conflict
// means someone changed it in between, and the write is retried on the fresh object
// (keeping their labels and foreign annotations). An issued Secret is never replaced by
// an older or equal revision: when the Secret already holds the revision being written
// (or a later one) the write is refused with SecretSupersededError.

import type { KubeClient } from '../../kubernetes/kube-client.js';
import { KubeApiError } from '../../kubernetes/kube-errors.js';
import type { CertificateStatus } from '../certificate-status.js';
import { SecretSupersededError, type CertificatePersister, type OrderState, type PersistedSecret } from './persister.js';
import type { CertificateResource } from '../resources.js';
import { readPersisted } from '../../config/schema/read-json.js';
import { certificateStatus, orderState } from '../schema/status.js';
import { ANNOTATIONS } from '../secret-facts.js';

/** Annotations under this prefix are ours: replaced on write; the others are kept. */
const OWN_PREFIX = 'envoy-sds.io/';
const STATE_SUFFIX = '-envoy-sds-state';
const MAX_ATTEMPTS = 8;
const CERT_MANAGER_CERTIFICATE_ANNOTATION = 'cert-manager.io/certificate-name';

/** The Secret is cert-manager's (it carries cert-manager.io/certificate-name): not written. */
export class SecretOwnedByCertManagerError extends Error {
  readonly code = 'SECRET_OWNED_BY_CERT_MANAGER';
  constructor(secret: string, certificate: string) {
    super(
      `Secret ${secret} belongs to cert-manager Certificate ${certificate} (annotation ${CERT_MANAGER_CERTIFICATE_ANNOTATION}); envoy-sds never writes it: choose another secretName`,
    );
    this.name = 'SecretOwnedByCertManagerError';
  }
}

interface SecretObject {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  type?: string;
  data?: Record<string, string>;
  [k: string]: unknown;
}

export function stateSecretName(cert: CertificateResource): string {
  return `${cert.name}${STATE_SUFFIX}`;
}

export class KubernetesSecretPersister implements CertificatePersister {
  /** `client` is asked for at the first call: the connection is made at the engine's start. */
  constructor(protected readonly client: () => KubeClient) {}

  async readSecret(namespace: string, name: string): Promise<PersistedSecret | undefined> {
    const obj = await this.get(namespace, name);
    const data = decode(obj?.data);
    if (!obj || Object.keys(data).length === 0) return undefined;
    return { data, annotations: { ...(obj.metadata?.annotations ?? {}) } };
  }

  async writeSecret(namespace: string, name: string, secret: PersistedSecret): Promise<void> {
    const attempted = revisionOf(secret.annotations);
    await this.readModifyWrite(namespace, name, (current) => {
      // cert-manager's Secret: its controller would fight ours over it, so never ours to write.
      if (current?.metadata?.annotations?.[CERT_MANAGER_CERTIFICATE_ANNOTATION] !== undefined)
        throw new SecretOwnedByCertManagerError(`${namespace}/${name}`, current.metadata.annotations[CERT_MANAGER_CERTIFICATE_ANNOTATION]);
      const held = revisionOf(current?.metadata?.annotations ?? {});
      if (attempted !== undefined && held !== undefined && held >= attempted)
        throw new SecretSupersededError(`${namespace}/${name}`, held, attempted);
      const foreign = Object.entries(current?.metadata?.annotations ?? {}).filter(([k]) => !k.startsWith(OWN_PREFIX));
      const tls = secret.data['tls.crt'] !== undefined && secret.data['tls.key'] !== undefined;
      return {
        ...(current ?? {}),
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { ...(current?.metadata ?? { name, namespace }), annotations: { ...Object.fromEntries(foreign), ...secret.annotations } },
        // The type of an existing Secret cannot change; a new one is kubernetes.io/tls when it can be.
        type: current?.type ?? (tls ? 'kubernetes.io/tls' : 'Opaque'),
        data: encode(secret.data),
      };
    });
  }

  async readNextPrivateKey(cert: CertificateResource): Promise<string | undefined> {
    return (await this.readState(cert))['next.key'];
  }

  writeNextPrivateKey(cert: CertificateResource, pem: string): Promise<void> {
    return this.updateState(cert, (d) => (d['next.key'] = pem));
  }

  deleteNextPrivateKey(cert: CertificateResource): Promise<void> {
    return this.updateState(cert, (d) => delete d['next.key']);
  }

  async readOrder(cert: CertificateResource): Promise<OrderState | undefined> {
    const text = (await this.readState(cert))['order.json'];
    return readPersisted(orderState, text);
  }

  writeOrder(cert: CertificateResource, order: OrderState): Promise<void> {
    return this.updateState(cert, (d) => (d['order.json'] = JSON.stringify(order)));
  }

  deleteOrder(cert: CertificateResource): Promise<void> {
    return this.updateState(cert, (d) => delete d['order.json']);
  }

  async readStatus(cert: CertificateResource): Promise<CertificateStatus | undefined> {
    const text = (await this.readState(cert))['status.json'];
    // A damaged status is rebuilt from the Secret.
    return readPersisted(certificateStatus, text);
  }

  writeStatus(cert: CertificateResource, status: CertificateStatus): Promise<void> {
    return this.updateState(cert, (d) => (d['status.json'] = JSON.stringify(status)));
  }

  private async readState(cert: CertificateResource): Promise<Record<string, string>> {
    return decode((await this.get(cert.namespace, stateSecretName(cert)))?.data);
  }

  private async updateState(cert: CertificateResource, change: (data: Record<string, string>) => void): Promise<void> {
    await this.readModifyWrite(cert.namespace, stateSecretName(cert), (current) => {
      const data = decode(current?.data);
      const before = JSON.stringify(data);
      change(data);
      if (current && JSON.stringify(data) === before) return undefined; // nothing to write
      if (!current && Object.keys(data).length === 0) return undefined; // deleting from nothing
      return {
        ...(current ?? {}),
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: current?.metadata ?? {
          name: stateSecretName(cert),
          namespace: cert.namespace,
          labels: { [ANNOTATIONS.certificateName]: cert.name },
        },
        type: current?.type ?? 'Opaque',
        data: encode(data),
      };
    });
  }

  /**
   * GET, compute, then PUT with the resourceVersion read (or POST when absent); on 409
   * (changed or created meanwhile) start again from a fresh GET. `next` returning
   * undefined writes nothing.
   */
  private async readModifyWrite(
    namespace: string,
    name: string,
    next: (current: SecretObject | undefined) => SecretObject | undefined,
  ): Promise<void> {
    const collection = `/api/v1/namespaces/${namespace}/secrets`;
    let last: unknown;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(namespace, name);
      const body = next(current);
      if (!body) return;
      try {
        if (current) await this.client().request('PUT', `${collection}/${name}`, { body });
        else await this.client().request('POST', collection, { body });
        return;
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 409)) throw err;
        last = err;
      }
    }
    throw new Error(`Secret ${namespace}/${name}: still conflicting after ${MAX_ATTEMPTS} attempts (${(last as Error).message})`);
  }

  private async get(namespace: string, name: string): Promise<SecretObject | undefined> {
    try {
      return await this.client().request<SecretObject>('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }
}

function revisionOf(annotations: Record<string, string>): number | undefined {
  const text = annotations[ANNOTATIONS.revision];
  const n = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

function decode(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

function encode(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}
