// Shared setup of the Kubernetes tests: a real kube-apiserver (test/harness), an admin
// client, and the SDS server with its `kubernetes:` section pointed at that API server.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { KubeBinariesNotFoundError, startKubeCluster, type KubeCluster, type KubeClusterOptions } from '../harness/kube-cluster.js';
import { KubeClient } from '../../src/kubernetes/kube-client.js';
import { fromKubeconfig } from '../../src/kubernetes/kube-connection.js';
import { KubeApiError } from '../../src/kubernetes/kube-errors.js';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import type { StartOptions } from '../../src/main.js';

export const b64 = (s: string): string => Buffer.from(s).toString('base64');

/**
 * A cluster for one test file. Outside CI a machine without the binaries skips; under
 * CI=true that is a failure (CI must build them: test/harness/k8s/build.sh).
 */
export async function clusterOrSkip(t: TestContext, opts: KubeClusterOptions = {}): Promise<KubeCluster | undefined> {
  try {
    return await startKubeCluster(opts);
  } catch (err) {
    if (err instanceof KubeBinariesNotFoundError && process.env['CI'] !== 'true') {
      t.skip(err.message);
      return undefined;
    }
    throw err;
  }
}

/** A cluster and an admin client for one test, both closed after it; undefined when skipped (outside CI). */
export async function clusterWithAdmin(
  t: TestContext,
  opts: KubeClusterOptions = {},
): Promise<{ cluster: KubeCluster; admin: KubeAdmin } | undefined> {
  const cluster = await clusterOrSkip(t, opts);
  if (!cluster) return undefined;
  const admin = new KubeAdmin(cluster);
  t.after(async () => {
    admin.close();
    await cluster.stop();
  });
  return { cluster, admin };
}

/** Admin operations on the test cluster, with the server's own client. */
export class KubeAdmin {
  readonly client: KubeClient;

  constructor(readonly cluster: KubeCluster) {
    this.client = new KubeClient(fromKubeconfig(cluster.kubeconfigPath, undefined, 'test'));
  }

  /** Namespaces never finish deleting here (no controller-manager): always a fresh name. */
  async namespace(prefix: string): Promise<string> {
    const name = `${prefix}-${randomBytes(3).toString('hex')}`;
    await this.client.request('POST', '/api/v1/namespaces', { body: { metadata: { name } } });
    return name;
  }

  async ensureNamespace(name: string): Promise<void> {
    await this.create(`/api/v1/namespaces`, { metadata: { name } }, true);
  }

  /** Creates or replaces a Secret; values are plain strings. */
  async putSecret(ns: string, name: string, data: Record<string, string>, type = 'kubernetes.io/tls'): Promise<Record<string, unknown>> {
    return this.put(`/api/v1/namespaces/${ns}/secrets`, name, {
      metadata: { name, namespace: ns },
      type,
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    });
  }

  async putConfigMap(ns: string, name: string, data: Record<string, string>): Promise<Record<string, unknown>> {
    return this.put(`/api/v1/namespaces/${ns}/configmaps`, name, { metadata: { name, namespace: ns }, data });
  }

  async deleteSecret(ns: string, name: string): Promise<void> {
    await this.client.request('DELETE', `/api/v1/namespaces/${ns}/secrets/${name}`);
  }

  /** A ServiceAccount and a token for it (TokenRequest), audience envoy-sds by default. */
  async serviceAccountToken(ns: string, name: string, audiences = ['envoy-sds']): Promise<string> {
    await this.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name } }, true);
    const tr = await this.client.request<{ status?: { token?: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`,
      {
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences, expirationSeconds: 3600 } },
      },
    );
    return tr.status?.token ?? '';
  }

  /** Role (get on these Secrets, or all) and RoleBinding to a ServiceAccount. */
  async allowSecretRead(ns: string, sa: { namespace: string; name: string }, bindingName: string, secrets?: string[]): Promise<void> {
    await this.create(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
      {
        metadata: { name: bindingName },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'], ...(secrets ? { resourceNames: secrets } : {}) }],
      },
      true,
    );
    await this.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      metadata: { name: bindingName },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: bindingName },
      subjects: [{ kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace }],
    });
  }

  /** Role (get on all ConfigMaps) and RoleBinding: CA bundles of another namespace. */
  async allowConfigMapRead(ns: string, sa: { namespace: string; name: string }, bindingName: string): Promise<void> {
    await this.create(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
      {
        metadata: { name: bindingName },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
      },
      true,
    );
    await this.create(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
      {
        metadata: { name: bindingName },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: bindingName },
        subjects: [{ kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace }],
      },
      true,
    );
  }

  async deleteRoleBinding(ns: string, name: string): Promise<void> {
    await this.client.request('DELETE', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/${name}`);
  }

  /** What the API server answers now for "may this ServiceAccount get this Secret?". */
  async canGet(sa: { namespace: string; name: string }, ns: string, secret: string): Promise<boolean> {
    const r = await this.client.request<{ status?: { allowed?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: `system:serviceaccount:${sa.namespace}:${sa.name}`,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`, 'system:authenticated'],
          resourceAttributes: { namespace: ns, verb: 'get', resource: 'secrets', name: secret },
        },
      },
    });
    return r.status?.allowed === true;
  }

  /** Events about one object. */
  async eventsFor(
    ns: string,
    name: string,
  ): Promise<Array<{ reason?: string; message?: string; type?: string; involvedObject?: { kind?: string; resourceVersion?: string } }>> {
    const list = await this.client.request<{ items?: Array<Record<string, unknown>> }>('GET', `/api/v1/namespaces/${ns}/events`, {
      query: { fieldSelector: `involvedObject.name=${name}` },
    });
    return list.items ?? [];
  }

  async create(collection: string, body: Record<string, unknown>, okIfExists = false): Promise<Record<string, unknown>> {
    try {
      return await this.client.request('POST', collection, { body });
    } catch (err) {
      if (okIfExists && err instanceof KubeApiError && err.status === 409) return {};
      throw err;
    }
  }

  private async put(collection: string, name: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    try {
      return await this.client.request('POST', collection, { body });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 409)) throw err;
    }
    // Replace without a resourceVersion: last write wins, which is what a test wants.
    return this.client.request('PUT', `${collection}/${name}`, { body });
  }

  close(): void {
    this.client.close();
  }
}

export interface KubeServerOptions {
  namespaces?: string[];
  /** Merged into the `kubernetes:` section. */
  kubernetes?: Record<string, unknown>;
  /** Other top-level config (grpc, authorization, ...). */
  doc?: Record<string, unknown>;
  kubeconfigPath?: string;
  /** Passed to startServer (e.g. an audit destination). */
  start?: StartOptions;
}

/**
 * The SDS server with Kubernetes on, through the real wiring (main.ts). Durations
 * are shortened so that cache expiry and reconnects happen within a test.
 */
export async function startKubeSdsServer(cluster: KubeCluster, opts: KubeServerOptions = {}): Promise<TestServer> {
  return startTestServer(
    {
      authorization: { rules: [] },
      ...opts.doc,
      kubernetes: {
        kubeconfig: opts.kubeconfigPath ?? cluster.kubeconfigPath,
        ...(opts.namespaces ? { namespaces: opts.namespaces } : {}),
        requestTimeoutSeconds: 3,
        watch: { silentSeconds: 6, backoffInitialSeconds: 0.1, backoffMaxSeconds: 1 },
        authentication: { tokenCacheSeconds: 2 },
        authorization: { allowCacheSeconds: 2, denyCacheSeconds: 1, staleIfErrorSeconds: 120 },
        ...opts.kubernetes,
      },
    },
    opts.start,
  );
}

/** GET /readyz: status and body. */
export async function readyz(server: TestServer): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${server.httpAddress}/readyz`);
  return { status: res.status, body: await res.text() };
}

/** Polls until /readyz answers 200 (all informers listed once). */
export async function untilReady(server: TestServer, timeoutMs = 20_000): Promise<string> {
  const start = Date.now();
  for (;;) {
    const r = await readyz(server);
    if (r.status === 200) return r.body;
    if (Date.now() - start > timeoutMs) throw new Error(`not ready after ${timeoutMs} ms: ${r.body}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** An Envoy that authenticates with a ServiceAccount token. */
export function envoyWithToken(server: TestServer, token: string | undefined, id = 'gateway-1'): FakeEnvoy {
  return new FakeEnvoy(server.grpcAddress!, {
    node: { id, cluster: 'gateway' },
    ...(token !== undefined ? { metadata: { authorization: `Bearer ${token}` } } : {}),
  });
}

/** Polls an async condition (server-side state) until it holds. */
export async function eventually(fn: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!(await fn())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { makeClientCert as clientCertificate } from '../support/openssl-certs.js';

/** A kubeconfig for the same API server that authenticates with this bearer token. */
export function kubeconfigWithToken(cluster: KubeCluster, token: string, dir: string, server = cluster.server): string {
  const path = join(dir, `kubeconfig-${randomBytes(3).toString('hex')}`);
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: c',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority-data: ${b64(cluster.caPem)}`,
      'users:',
      '- name: u',
      '  user:',
      `    token: ${token}`,
      'contexts:',
      '- name: c',
      '  context: { cluster: c, user: u }',
      'current-context: c',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}
