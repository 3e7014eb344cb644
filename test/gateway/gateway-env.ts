// Gateway API in tests: the real CRDs (sigs.k8s.io/gateway-api, standard channel, fetched
// by test/harness/gateway-api/crds.sh from the Go module proxy) on the harness's API
// server, and the pods a gateway's token is bound to.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeCluster } from '../harness/kube-cluster.js';
import { installCrds } from '../harness/cert-manager.js';
import type { KubeAdmin } from '../k8s/kube-test-env.js';

export const GATEWAY_API = '/apis/gateway.networking.k8s.io/v1';

function repoFile(rel: string): string {
  // This file runs from test/gateway/ (ts) or dist/test/gateway/ (js).
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, rel))) return join(dir, rel);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`${rel} not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Installs the standard-channel CRDs and waits until each is served. */
export async function installGatewayApiCrds(cluster: KubeCluster): Promise<void> {
  const out = execFileSync('bash', [repoFile('test/harness/gateway-api/crds.sh')], { encoding: 'utf8' });
  await installCrds(cluster, out.trim().split('\n').filter(Boolean));
}

/**
 * A pod of `ns` running as ServiceAccount `sa` with the gateway-name label (never
 * scheduled: the harness has no nodes, and the API server binds tokens to it all the
 * same), and a token bound to it: TokenReview reports its pod-name and pod-uid.
 */
export async function gatewayPodToken(admin: KubeAdmin, ns: string, sa: string, pod: string, gateway: string | undefined): Promise<string> {
  await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: sa } }, true);
  const created = (await admin.create(`/api/v1/namespaces/${ns}/pods`, {
    metadata: { name: pod, ...(gateway ? { labels: { 'gateway.networking.k8s.io/gateway-name': gateway } } : {}) },
    spec: {
      serviceAccountName: sa,
      automountServiceAccountToken: false,
      containers: [{ name: 'envoy', image: 'envoyproxy/envoy:distroless-v1.36.2' }],
    },
  })) as { metadata?: { uid?: string } };
  const tr = await admin.client.request<{ status?: { token?: string } }>('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: ['envoy-sds'],
        expirationSeconds: 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod, uid: created.metadata?.uid },
      },
    },
  });
  return tr.status?.token ?? '';
}
