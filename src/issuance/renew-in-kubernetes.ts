// `envoy-sds renew --kubernetes`: what `cmctl renew` does, against the API server with
// the caller's own credentials (kubeconfig, or in-cluster): set the Certificate's
// Issuing condition to True (ManuallyTriggered) in its status subresource. The replica
// that leads notices it and re-issues; no HTTP port, no loopback rule, RBAC decides.

import { emptyStatus, type CertificateStatus } from './certificate-status.js';
import { certificatePath } from './persisters/custom-resource-persister.js';
import { manuallyTriggered } from './manual-trigger.js';
import { KubeClient } from '../kubernetes/kube-client.js';
import { loadKubeConnection } from '../kubernetes/kube-connection.js';
import { KubeApiError } from '../kubernetes/kube-errors.js';

export interface RenewInKubernetesOptions {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
}

export async function renewInKubernetes(
  refs: string[],
  opts: RenewInKubernetesOptions,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  let client: KubeClient;
  try {
    client = new KubeClient(
      loadKubeConnection(
        { ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}), ...(opts.context ? { context: opts.context } : {}) },
        '--kubeconfig',
      ),
    );
  } catch (e) {
    err.write(`envoy-sds renew: ${(e as Error).message}\n`);
    return 1;
  }
  let code = 0;
  try {
    for (const ref of refs) {
      const [namespace, name] = ref.includes('/') ? (ref.split('/', 2) as [string, string]) : [opts.namespace ?? 'default', ref];
      try {
        const at = await markIssuing(client, namespace, name);
        out.write(`renewal of ${namespace}/${name} requested at ${at} (Issuing=True, ManuallyTriggered)\n`);
      } catch (e) {
        const message = e instanceof KubeApiError && e.status === 404 ? `no Certificate ${namespace}/${name}` : (e as Error).message;
        err.write(`envoy-sds renew ${namespace}/${name}: ${message}\n`);
        code = 1;
      }
    }
  } finally {
    client.close();
  }
  return code;
}

/** Read-modify-write with the resourceVersion as precondition; a conflict reads again. */
async function markIssuing(client: KubeClient, namespace: string, name: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const cert = await client.request<{ metadata?: { resourceVersion?: string }; status?: CertificateStatus }>(
      'GET',
      certificatePath(namespace, name),
    );
    const now = new Date();
    const status = manuallyTriggered(cert.status && Array.isArray(cert.status.conditions) ? cert.status : emptyStatus(), now);
    try {
      await client.request('PATCH', `${certificatePath(namespace, name)}/status`, {
        body: { metadata: { resourceVersion: cert.metadata?.resourceVersion }, status: { conditions: status.conditions } },
        contentType: 'application/merge-patch+json',
      });
      return now.toISOString();
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 409) || attempt >= 5) throw e;
    }
  }
}
