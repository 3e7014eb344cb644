// deploy/ against a real kube-apiserver: every manifest passes a server-side dry run
// (schema, defaulting, admission), the pods comply with Pod Security "restricted", the
// server config in the ConfigMap is one the server accepts, and the gateway's bootstrap
// and mounts agree with envoy-config/gateway-kubernetes.yaml.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/server-config.js';
import { parseKubernetesConfig } from '../../src/config/kubernetes-config.js';
import { parseIssuanceConfig } from '../../src/issuance/issuance-config.js';
import { KubeApiError } from '../../src/kubernetes/kube-errors.js';
import { clusterWithAdmin, eventually } from './kube-test-env.js';

/** Custom resources in the shape of deploy/crds/, for the CRDs' dry run. */
const SAMPLE_RESOURCES = 'test/fixtures/issuance/custom-resources.yaml';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

/** Not Kubernetes manifests: Prometheus rule files, and the Helm chart (templates; test/k8s/helm-chart.test.ts). */
const NOT_MANIFESTS = new Set(['deploy/prometheus', 'deploy/helm']);

function manifestFiles(dir = 'deploy'): string[] {
  return readdirSync(dir)
    .map((f) => join(dir, f))
    .filter((p) => !NOT_MANIFESTS.has(p))
    .flatMap((p) => (statSync(p).isDirectory() ? manifestFiles(p) : [p]))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

function objectsOf(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

const all = (): Obj[] => manifestFiles().flatMap(objectsOf);
const find = (kind: string, name: string): Obj => {
  const o = all().find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} in deploy/`);
  return o;
};

/** Collection path of an object, for the dry run without kubectl. */
function collectionOf(o: Obj): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const plural = o.kind === 'NetworkPolicy' ? 'networkpolicies' : `${o.kind.toLowerCase()}s`;
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'ClusterIssuer'].includes(o.kind);
  return clusterScoped ? `${base}/${plural}` : `${base}/namespaces/${o.metadata.namespace}/${plural}`;
}

test('deploy/: manifests pass a server-side dry run', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;

  // The namespaces must exist for namespaced objects to be dry-run in them: create them
  // for real from the manifests (labels included: Pod Security "restricted").
  for (const ns of all().filter((o) => o.kind === 'Namespace')) await admin.create('/api/v1/namespaces', ns, true);
  // Likewise the CRDs, for custom resources to be dry-run against them: created for real,
  // then awaited until Established (their REST endpoints are served).
  const crds = all().filter((o) => o.kind === 'CustomResourceDefinition');
  for (const crd of crds) await admin.create(collectionOf(crd), crd, true);
  for (const crd of crds) {
    await eventually(
      async () => {
        const got = await admin.client.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
          'GET',
          `${collectionOf(crd)}/${crd.metadata.name}`,
        );
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      },
      20_000,
      `CRD ${crd.metadata.name} established`,
    );
  }

  await t.test('every manifest is accepted by the API server (--dry-run=server)', async () => {
    const files = manifestFiles();
    assert.ok(files.length >= 8, files.join(', '));
    if (cluster.kubectlPath) {
      const { stdout } = await promisify(execFile)(cluster.kubectlPath, [
        '--kubeconfig',
        cluster.kubeconfigPath,
        'apply',
        '--dry-run=server',
        ...files.flatMap((f) => ['-f', f]),
        '-o',
        'name',
      ]);
      const applied = stdout.trim().split('\n').sort();
      const expected = all()
        .map((o) => `${o.kind.toLowerCase()}${o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : ''}/${o.metadata.name}`)
        .sort();
      assert.deepEqual(applied, expected);
    } else {
      for (const o of all()) {
        if (o.kind === 'Namespace') continue;
        await admin.client.request('POST', collectionOf(o), { body: o, query: { dryRun: 'All' } });
      }
    }
  });

  await t.test('the CRDs define Issuer, ClusterIssuer and Certificate of envoy-sds.io/v1alpha1 with a status subresource', () => {
    const crds = all().filter((o) => o.kind === 'CustomResourceDefinition') as Array<
      Obj & {
        spec: {
          group: string;
          scope: string;
          names: { kind: string };
          versions: Array<{ name: string; subresources?: { status?: unknown } }>;
        };
      }
    >;
    assert.deepEqual(crds.map((c) => [c.spec.names.kind, c.spec.scope]).sort(), [
      ['Certificate', 'Namespaced'],
      ['ClusterIssuer', 'Cluster'],
      ['Issuer', 'Namespaced'],
    ]);
    for (const c of crds) {
      assert.equal(c.spec.group, 'envoy-sds.io');
      assert.deepEqual(
        c.spec.versions.map((v) => v.name),
        ['v1alpha1'],
      );
      assert.ok(c.spec.versions[0]!.subresources?.status, `${c.metadata.name}: status subresource`);
    }
  });

  await t.test('sample custom resources pass a server-side dry run against the CRDs, and the engine parses the same file', async () => {
    const samples = objectsOf(SAMPLE_RESOURCES);
    assert.deepEqual([...new Set(samples.map((o) => o.kind))].sort(), ['Certificate', 'ClusterIssuer', 'Issuer']);
    for (const o of samples) await admin.client.request('POST', collectionOf(o), { body: o, query: { dryRun: 'All' } });
    // The schema has teeth: a field the engine does not know, or a value it refuses, is refused.
    const cert = samples.find((o) => o.kind === 'Certificate')!;
    const spec = cert['spec'] as Record<string, unknown>;
    for (const bad of [
      { ...spec, privateKey: { algorithm: 'DSA' } },
      { ...spec, secretName: undefined },
    ]) {
      await assert.rejects(
        admin.client.request('POST', collectionOf(cert), { body: { ...cert, spec: bad }, query: { dryRun: 'All' } }),
        (err: unknown) => err instanceof KubeApiError && err.status === 422,
      );
    }
    const issuer = samples.find((o) => o.kind === 'Issuer')!;
    await assert.rejects(
      admin.client.request('POST', collectionOf(issuer), {
        body: { ...issuer, spec: { ca: { secretName: 'x' }, selfSigned: {} } },
        query: { dryRun: 'All' },
      }),
      (err: unknown) => err instanceof KubeApiError && err.status === 422,
      'exactly one issuer type',
    );
    const parsed = parseIssuanceConfig({ resourceFiles: [SAMPLE_RESOURCES] }, { baseDir: process.cwd() });
    assert.equal(parsed.certificates.length, samples.filter((o) => o.kind === 'Certificate').length);
  });

  await t.test('the pods satisfy Pod Security "restricted" of their namespaces (non-root, read-only root)', async () => {
    for (const d of all().filter((o) => o.kind === 'Deployment')) {
      const spec = d['spec'] as { template: { metadata: Record<string, unknown>; spec: Record<string, unknown> } };
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${d.metadata.name}-check`, namespace: d.metadata.namespace },
        spec: spec.template.spec,
      };
      // PodSecurity admission enforces on Pods (only warns on Deployments): a dry-run Pod checks it.
      await admin.client.request('POST', `/api/v1/namespaces/${d.metadata.namespace}/pods`, { body: pod, query: { dryRun: 'All' } });
      // The check has teeth: the same pod running as root is refused.
      const rootPod = { ...pod, spec: { ...spec.template.spec, securityContext: { runAsUser: 0 } } };
      await assert.rejects(
        admin.client.request('POST', `/api/v1/namespaces/${d.metadata.namespace}/pods`, { body: rootPod, query: { dryRun: 'All' } }),
        /violates PodSecurity "restricted/,
      );
      const containers = spec.template.spec['containers'] as Array<{
        securityContext?: { readOnlyRootFilesystem?: boolean };
        resources?: { requests?: unknown };
      }>;
      for (const c of containers) {
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${d.metadata.name}: read-only root filesystem`);
        assert.ok(c.resources?.requests, `${d.metadata.name}: resource requests`);
      }
    }
  });

  await t.test('the server config in the ConfigMap is valid, and the Deployment serves it as described', () => {
    const cm = find('ConfigMap', 'envoy-sds-config') as Obj & { data: Record<string, string> };
    const config = parseConfig(parseYaml(cm.data['config.yaml']!), '/');
    parseKubernetesConfig(config.kubernetes);
    assert.equal(config.grpc.tcp?.address, '0.0.0.0:18000');
    assert.equal(config.http?.address, '0.0.0.0:18080');
    const dep = find('Deployment', 'envoy-sds') as Obj & {
      spec: {
        replicas: number;
        template: { spec: { containers: Array<Record<string, unknown>>; volumes: Array<Record<string, unknown>> } };
      };
    };
    assert.equal(dep.spec.replicas, 2);
    const c = dep.spec.template.spec.containers[0]!;
    assert.deepEqual(c['args'], ['serve', '--config', '/etc/envoy-sds/config/config.yaml']);
    assert.equal((c['readinessProbe'] as { httpGet: { path: string } }).httpGet.path, '/readyz');
    assert.equal((c['livenessProbe'] as { httpGet: { path: string } }).httpGet.path, '/healthz');
    const svc = find('Service', 'envoy-sds') as Obj & { spec: { ports: Array<{ name: string; port: number }> } };
    assert.deepEqual(
      svc.spec.ports.map((p) => [p.name, p.port]),
      [
        ['grpc', 18000],
        ['http', 18080],
      ],
    );
  });

  await t.test('the gateway runs envoy-config/gateway-kubernetes.yaml with the token and CA where it reads them', () => {
    const bootstrapText = readFileSync('envoy-config/gateway-kubernetes.yaml', 'utf8');
    const cm = find('ConfigMap', 'envoy-gateway-bootstrap') as Obj & { data: Record<string, string> };
    assert.equal(cm.data['gateway-kubernetes.yaml'], bootstrapText, 'deploy/gateway/bootstrap.yaml is a copy of the bootstrap');
    const tokenFile = /secret_data: \{ filename: (\S+) \}/.exec(bootstrapText)?.[1];
    const caFile = /root_certs: \{ filename: (\S+) \}/.exec(bootstrapText)?.[1];
    assert.ok(tokenFile && caFile);

    type Mount = { name: string; mountPath: string };
    const dep = find('Deployment', 'gateway') as Obj & {
      spec: {
        template: {
          spec: {
            containers: Array<{ args: string[]; volumeMounts: Mount[] }>;
            volumes: Array<{
              name: string;
              configMap?: { name: string };
              projected?: { sources?: Array<{ serviceAccountToken?: { audience?: string; path?: string } }> };
            }>;
          };
        };
      };
    };
    const pod = dep.spec.template.spec;
    const mountFor = (file: string): { mount: Mount; rest: string } => {
      const mount = pod.containers[0]!.volumeMounts.find((m) => file.startsWith(`${m.mountPath}/`));
      assert.ok(mount, `a mount for ${file}`);
      return { mount, rest: file.slice(mount.mountPath.length + 1) };
    };
    const token = mountFor(tokenFile);
    const projected = pod.volumes.find((v) => v['name'] === token.mount.name)?.['projected']?.sources?.[0]?.serviceAccountToken;
    assert.deepEqual({ audience: projected?.audience, path: projected?.path }, { audience: 'envoy-sds', path: token.rest });
    const ca = mountFor(caFile);
    assert.equal(ca.rest, 'ca.crt');
    const boot = mountFor(`/etc/envoy/gateway-kubernetes.yaml`);
    assert.equal(pod.volumes.find((v) => v['name'] === boot.mount.name)?.['configMap']?.name, 'envoy-gateway-bootstrap');
    assert.ok(pod.containers[0]!.args.includes('/etc/envoy/gateway-kubernetes.yaml'));
  });
});
