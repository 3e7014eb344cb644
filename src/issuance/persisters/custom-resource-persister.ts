// The persister when resources are custom resources: as the Kubernetes Secret persister,
// except that a Certificate's status lives in its status subresource (what `kubectl get
// certificates` shows: Ready, revision, notAfter), not in the state Secret. The next key
// and an ACME order stay in the state Secret: a status is readable by more people than a
// Secret, and must never hold a key.

import type { KubeClient } from '../../kubernetes/kube-client.js';
import { KubeApiError } from '../../kubernetes/kube-errors.js';
import type { CertificateStatus } from '../certificate-status.js';
import { KubernetesSecretPersister } from './kubernetes-secret-persister.js';
import type { IssuerStatus } from '../issuer-status.js';
import { API_VERSION, type CertificateResource, type IssuerResource } from '../resources.js';
import { certificateStatus } from '../schema/status.js';

/** Optional status fields: absent ones are sent as null, which a merge patch removes. */
const OPTIONAL_FIELDS = [
  'notBefore',
  'notAfter',
  'renewalTime',
  'revision',
  'failedIssuanceAttempts',
  'lastFailureTime',
  'renewalRequestedAt',
  'order',
] as const;

export function certificatePath(namespace: string, name: string): string {
  return `/apis/${API_VERSION}/namespaces/${namespace}/certificates/${name}`;
}

export class CustomResourcePersister extends KubernetesSecretPersister {
  override async readStatus(cert: CertificateResource): Promise<CertificateStatus | undefined> {
    try {
      const o = await this.client().request<{ status?: unknown }>('GET', certificatePath(cert.namespace, cert.name));
      const status = certificateStatus.safeParse(o.status);
      return status.success ? status.data : undefined;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  override async writeStatus(cert: CertificateResource, status: CertificateStatus): Promise<void> {
    await writeCertificateStatus(this.client(), cert.namespace, cert.name, status);
  }

  /** The Issuer's or ClusterIssuer's status subresource (Ready, ACME account URI). */
  async writeIssuerStatus(issuer: IssuerResource, status: IssuerStatus): Promise<void> {
    const path =
      issuer.kind === 'ClusterIssuer'
        ? `/apis/${API_VERSION}/clusterissuers/${issuer.name}/status`
        : `/apis/${API_VERSION}/namespaces/${issuer.namespace}/issuers/${issuer.name}/status`;
    try {
      await this.client().request('PATCH', path, {
        body: { status: { acme: null, ...status } },
        contentType: 'application/merge-patch+json',
      });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return; // deleted meanwhile
      throw err;
    }
  }
}

/** Merge-patches a Certificate's status subresource; a Certificate deleted meanwhile is no error. */
export async function writeCertificateStatus(
  client: KubeClient,
  namespace: string,
  name: string,
  status: CertificateStatus,
): Promise<void> {
  const body: Record<string, unknown> = { ...status };
  for (const f of OPTIONAL_FIELDS) if (status[f] === undefined) body[f] = null;
  try {
    await client.request('PATCH', `${certificatePath(namespace, name)}/status`, {
      body: { status: body },
      contentType: 'application/merge-patch+json',
    });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) return;
    throw err;
  }
}
