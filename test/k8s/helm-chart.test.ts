// deploy/helm/envoy-sds with a real helm (built from the Go module proxy by
// test/harness/helm/build.sh) against a real kube-apiserver: lint, a render per value set
// (deploy/helm/envoy-sds/ci/), each render accepted by a server-side dry run (the chart's
// CRDs, cert-manager's and Prometheus Operator's real CRDs installed first), the default
// render equal to deploy/ in the essentials, and one value set installed for real. The
// cluster has no kubelet, so the installed Deployment never runs: the server runs here
// instead, with the config from the installed ConfigMap, a TokenRequest token of the
// chart's ServiceAccount and only the chart's RBAC, and must become ready, serve a gateway
// that RBAC allows, refuse one it does not, and issue a Certificate (the issuance RBAC).
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../../src/config/server-config.js';
import { parseKubernetesConfig } from '../../src/config/kubernetes-config.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { clusterOrSkip, eventually, KubeAdmin, kubeconfigWithToken } from './kube-test-env.js';

const CHART = 'deploy/helm/envoy-sds';
const VALUE_SETS = readdirSync(`${CHART}/ci`)
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();
const RELEASE = 'envoy-sds';
const NS = 'envoy-sds';
const run = promisify(execFile);

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
};

/** helm from the cache that build.sh fills; under CI=true its absence fails the test. */
function helmOrSkip(t: TestContext): string | undefined {
  const res = spawnSync('bash', ['test/harness/helm/build.sh', '--print-path'], { encoding: 'utf8' });
  const path = res.stdout.trim().split('\n').pop() ?? '';
  if (res.status === 0 && existsSync(path)) return path;
  const why = `helm not built: run test/harness/helm/build.sh (.ci/run does) (${res.stderr.trim()})`;
  if (process.env['CI'] === 'true') assert.fail(why);
  t.skip(why);
  return undefined;
}

function objects(yamlText: string): Obj[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && typeof o === 'object');
}

const id = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const deployObjects = (): Obj[] =>
  ['rbac.yaml', 'config.yaml', 'deployment.yaml', 'service.yaml', 'pdb.yaml', 'networkpolicy.yaml'].flatMap((f) =>
    objects(readFileSync(`deploy/${f}`, 'utf8')),
  );

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

test('deploy/helm/envoy-sds: lint, render, dry run, install, and the server it configures', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  const tmp = mkdtempSync(join(tmpdir(), 'helm-chart-'));
  let server: ChildProcess | undefined;
  t.after(async () => {
    server?.kill('SIGKILL');
    admin.close();
    await cluster.stop();
    rmSync(tmp, { recursive: true, force: true });
  });
  const kubectl: string = cluster.kubectlPath ?? assert.fail('kubectl is built with kube-apiserver (test/harness/k8s/build.sh)');
  const kube = ['--kubeconfig', cluster.kubeconfigPath];
  // helm keeps its cache and config here, not in the user's home.
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(tmp, 'cache'),
    HELM_CONFIG_HOME: join(tmp, 'config'),
    HELM_DATA_HOME: join(tmp, 'data'),
  };
  const helmRun = async (args: string[]): Promise<string> => (await run(helm, args, { env: helmEnv, maxBuffer: 16 << 20 })).stdout;
  const template = async (valueSet?: string, extra: string[] = []): Promise<Obj[]> =>
    objects(await helmRun(['template', RELEASE, CHART, '-n', NS, ...(valueSet ? ['-f', `${CHART}/ci/${valueSet}`] : []), ...extra]));

  await t.test('helm lint --strict passes for the defaults and every value set', async () => {
    assert.ok(VALUE_SETS.length >= 3, VALUE_SETS.join(', '));
    for (const set of [undefined, ...VALUE_SETS]) {
      const out = await helmRun(['lint', '--strict', CHART, ...(set ? ['-f', `${CHART}/ci/${set}`] : [])]);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/, `${set ?? 'defaults'}: ${out}`);
    }
  });

  await t.test('values that cannot work are refused at render time, saying why', async () => {
    // values.schema.json: unknown keys, wrong types, values outside a set.
    await assert.rejects(
      template(undefined, ['--set', 'tls.source=issuer']),
      /at '\/tls\/source': value must be one of 'secret', 'certManager', 'issuance'/,
    );
    await assert.rejects(template(undefined, ['--set', 'tls.sourc=secret']), /at '\/tls': additional properties 'sourc' not allowed/);
    await assert.rejects(template(undefined, ['--set', 'replicas=two']), /at '\/replicas': got string, want integer/);
    await assert.rejects(template(undefined, ['--set', 'leaderElection.leaseDuration=15']), /leaseDuration/);
    // The templates: combinations the schema cannot express.
    await assert.rejects(template(undefined, ['--set', 'tls.source=certManager']), /needs tls.certManager.issuerRef.name/);
    await assert.rejects(
      template(undefined, ['--set', 'issuance.enabled=true', '--set', 'leaderElection.enabled=false']),
      /every replica would issue/,
    );
  });

  await t.test('the default render is deploy/ in the essentials', async () => {
    const chart = await template();
    const deploy = deployObjects();
    assert.deepEqual(chart.map(id).sort(), deploy.map(id).sort(), 'the same objects, by kind, namespace and name');
    const pick = (list: Obj[], o: Obj): Obj => list.find((x) => id(x) === id(o))!;
    for (const d of deploy) {
      const c = pick(chart, d);
      for (const key of ['rules', 'roleRef', 'subjects']) assert.deepEqual(c[key], d[key], `${id(d)}.${key}`);
      // The chart's selector adds the release (two releases side by side); deploy/'s label is in it.
      assert.equal(c.metadata.labels?.['app.kubernetes.io/name'], 'envoy-sds', id(d));
    }
    const config = (list: Obj[]): unknown =>
      parseYaml((list.find((o) => o.kind === 'ConfigMap')!['data'] as Record<string, string>)['config.yaml']!);
    assert.deepEqual(config(chart), config(deploy), 'the server configuration');
    type Pod = Record<string, unknown> & { containers: Array<Record<string, unknown> & { env: Array<{ name: string }> }> };
    type DeploymentSpec = Record<string, unknown> & { template: { spec: Pod } };
    const podOf = (list: Obj[]): DeploymentSpec => list.find((o) => o.kind === 'Deployment')!['spec'] as DeploymentSpec;
    const [cd, dd] = [podOf(chart), podOf(deploy)];
    assert.equal(cd['replicas'], dd['replicas']);
    assert.deepEqual(cd['strategy'], dd['strategy']);
    const [cp, dp] = [cd.template.spec, dd.template.spec];
    for (const key of ['serviceAccountName', 'terminationGracePeriodSeconds', 'securityContext', 'volumes'])
      assert.deepEqual(cp[key], dp[key], `pod ${key}`);
    const [cc, dc] = [cp.containers[0]!, dp.containers[0]!];
    for (const key of [
      'args',
      'ports',
      'readinessProbe',
      'livenessProbe',
      'startupProbe',
      'resources',
      'securityContext',
      'volumeMounts',
    ]) {
      assert.deepEqual(cc[key], dc[key], `container ${key}`);
    }
    for (const e of dc.env)
      assert.ok(
        cc.env.some((x) => x.name === e.name),
        `env ${e.name}`,
      );
    const specOf = (list: Obj[], kind: string): Record<string, unknown> =>
      list.find((o) => o.kind === kind)!['spec'] as Record<string, unknown>;
    assert.deepEqual(specOf(chart, 'Service')['ports'], specOf(deploy, 'Service')['ports']);
    assert.deepEqual(specOf(chart, 'PodDisruptionBudget')['minAvailable'], specOf(deploy, 'PodDisruptionBudget')['minAvailable']);
    for (const key of ['policyTypes', 'ingress', 'egress'])
      assert.deepEqual(specOf(chart, 'NetworkPolicy')[key], specOf(deploy, 'NetworkPolicy')[key], `NetworkPolicy ${key}`);
    // The chart ships deploy/crds/ as its crds/ (helm installs them first).
    for (const f of readdirSync('deploy/crds'))
      assert.equal(readFileSync(`${CHART}/crds/${f}`, 'utf8'), readFileSync(`deploy/crds/${f}`, 'utf8'), f);
  });

  await t.test('each value set renders what it says', async () => {
    const ns = await template('namespaced-values.yaml');
    assert.deepEqual(
      ns
        .filter((o) => o.kind === 'Role' && o.metadata.name.endsWith('-read'))
        .map((o) => o.metadata.namespace)
        .sort(),
      ['apps', 'gateway'],
    );
    assert.ok(!ns.some((o) => o.kind === 'ClusterRole' && o.metadata.name.endsWith('-read')), 'no cluster-wide read');
    assert.ok(!ns.some((o) => o.kind === 'PodDisruptionBudget' || o.kind === 'NetworkPolicy'), 'one replica: no PDB; network policy off');
    const nsConfig = parseConfig(
      parseYaml((ns.find((o) => o.kind === 'ConfigMap')!['data'] as Record<string, string>)['config.yaml']!),
      '/',
    );
    assert.deepEqual(parseKubernetesConfig(nsConfig.kubernetes).namespaces, ['apps', 'gateway']);

    const iss = await template('issuance-values.yaml');
    const issue = iss.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'envoy-sds-issue');
    assert.ok(issue, 'the issuance ClusterRole');
    assert.deepEqual(
      issue['rules'],
      objects(readFileSync('deploy/rbac-issuance.yaml', 'utf8')).find((o) => o.kind === 'ClusterRole')!['rules'],
    );
    const issConfig = parseYaml((iss.find((o) => o.kind === 'ConfigMap')!['data'] as Record<string, string>)['config.yaml']!) as {
      issuance: { persistence: string; leaderElection: { leaseName: string } };
    };
    assert.equal(issConfig.issuance.persistence, 'kubernetes');
    assert.equal(issConfig.issuance.leaderElection.leaseName, 'envoy-sds-issuance');
    assert.equal((iss.find((o) => o.kind === 'Deployment')!['spec'] as Record<string, unknown>)['replicas'], 3);

    const cm = await template('cert-manager-values.yaml');
    const cert = cm.find((o) => o.kind === 'Certificate');
    assert.ok(cert, 'a cert-manager Certificate');
    const spec = cert['spec'] as { secretName: string; dnsNames: string[] };
    assert.equal(spec.secretName, 'envoy-sds-tls');
    assert.ok(
      spec.dnsNames.includes('envoy-sds.envoy-sds.svc.cluster.local'),
      'the name gateways dial (envoy-config/gateway-kubernetes.yaml)',
    );
    assert.ok(readFileSync('envoy-config/gateway-kubernetes.yaml', 'utf8').includes(`target_uri: ${spec.dnsNames.at(-1)}:18000`));
    assert.ok(cm.some((o) => o.kind === 'ServiceMonitor'));

    const issued = await template('issued-tls-values.yaml');
    const issuer = issued.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'envoy-sds-tls-issuer-config');
    assert.ok(issuer, 'the issuance-only Deployment has its config');
    const issuerConfig = parseConfig(parseYaml((issuer['data'] as Record<string, string>)['config.yaml']!), '/');
    assert.equal(issuerConfig.grpc.tcp, undefined, 'no SDS port on the issuer');
    assert.ok(issued.some((o) => o.kind === 'Deployment' && o.metadata.name === 'envoy-sds-tls-issuer'));
    assert.ok(!issued.some((o) => o.kind === 'Certificate' && o.apiVersion.startsWith('cert-manager.io')), 'no cert-manager object');
    const issuerRole = issued.find((o) => o.kind === 'Role' && o.metadata.name === 'envoy-sds-tls-issuer');
    assert.equal(issuerRole?.metadata.namespace, NS, 'the issuer may write Secrets in the release namespace only');
    assert.ok(!issued.some((o) => o.kind.startsWith('Cluster') && o.metadata.name.includes('tls-issuer')));
  });

  // CRDs the renders need, created for real and awaited until served.
  const crdFiles = [
    ...readdirSync(`${CHART}/crds`).map((f) => `${CHART}/crds/${f}`),
    ...spawnSync('bash', ['test/harness/helm/crds.sh'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter((f) => f !== ''),
  ];
  assert.equal(crdFiles.length, 5, `three envoy-sds.io CRDs, cert-manager's Certificate, the ServiceMonitor: ${crdFiles.join(', ')}`);
  for (const f of crdFiles) await run(kubectl, [...kube, 'apply', '--server-side', '-f', f]);
  await run(kubectl, [...kube, 'wait', '--for=condition=Established', '--timeout=60s', ...crdFiles.flatMap((f) => ['-f', f])]);
  for (const ns of [NS, 'apps', 'gateway']) {
    await admin.create(
      '/api/v1/namespaces',
      {
        metadata: {
          name: ns,
          labels: { 'pod-security.kubernetes.io/enforce': 'restricted', ...(ns === 'gateway' ? { 'envoy-sds.io/gateway': 'true' } : {}) },
        },
      },
      true,
    );
  }

  await t.test('every render is accepted by the API server (--dry-run=server)', async () => {
    for (const set of [undefined, ...VALUE_SETS]) {
      const rendered = await helmRun(['template', RELEASE, CHART, '-n', NS, ...(set ? ['-f', `${CHART}/ci/${set}`] : [])]);
      const file = join(tmp, `render-${set ?? 'default'}.yaml`);
      writeFileSync(file, rendered);
      const { stdout } = await run(kubectl, [...kube, 'apply', '--dry-run=server', '-f', file, '-o', 'name']);
      assert.equal(stdout.trim().split('\n').length, objects(rendered).length, `${set ?? 'defaults'}: every object accepted`);
    }
    // The dry run has teeth: a field the schema does not know is refused.
    const bad = join(tmp, 'bad.yaml');
    const cert = (await template('cert-manager-values.yaml')).find((o) => o.kind === 'Certificate')!;
    writeFileSync(bad, stringify({ ...cert, spec: { ...(cert['spec'] as object), issuerRefs: {} } }));
    await assert.rejects(
      run(kubectl, [...kube, 'apply', '--dry-run=server', '--validate=strict', '-f', bad]),
      /unknown field "spec.issuerRefs"/,
    );
  });

  await t.test(
    'installed for real; the server runs with the installed config, the chart ServiceAccount token and RBAC, and is ready',
    async () => {
      // The serving certificate the Deployment mounts (tls.source: secret), naming the Service.
      const ca = makeCa('envoy-sds test CA');
      const leaf = makeLeaf(ca, ['envoy-sds.envoy-sds.svc.cluster.local', 'localhost']);
      await admin.putSecret(NS, 'envoy-sds-tls', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem });
      await helmRun([
        'install',
        RELEASE,
        CHART,
        '-n',
        NS,
        '-f',
        `${CHART}/ci/issuance-values.yaml`,
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--wait=false',
      ]);
      for (const path of [
        `/apis/apps/v1/namespaces/${NS}/deployments/envoy-sds`,
        `/api/v1/namespaces/${NS}/services/envoy-sds`,
        `/api/v1/namespaces/${NS}/serviceaccounts/envoy-sds`,
        `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/envoy-sds-issue`,
        `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/envoy-sds`,
      ]) {
        await admin.client.request('GET', path); // 404 throws
      }

      // The config exactly as installed, with only what differs outside a pod: local
      // addresses, files in a temp dir, and a kubeconfig instead of the in-cluster one.
      const cm = await admin.client.request<{ data: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${NS}/configmaps/envoy-sds-config`,
      );
      const config = parseYaml(cm.data['config.yaml']!) as Record<string, unknown> & {
        grpc: { tcp: Record<string, unknown> };
        http: Record<string, unknown>;
        kubernetes: Record<string, unknown>;
      };
      const [grpcPort, httpPort] = [await freePort(), await freePort()];
      writeFileSync(join(tmp, 'tls.crt'), leaf.certPem);
      writeFileSync(join(tmp, 'tls.key'), leaf.keyPem, { mode: 0o600 });
      writeFileSync(join(tmp, 'ca.crt'), ca.certPem);
      const token = await admin.serviceAccountToken(NS, 'envoy-sds', [cluster.serviceAccountIssuer]);
      config['dataDir'] = join(tmp, 'data');
      config.grpc.tcp['address'] = `127.0.0.1:${grpcPort}`;
      config.grpc.tcp['tls'] = { certFile: join(tmp, 'tls.crt'), keyFile: join(tmp, 'tls.key') };
      config.http['address'] = `127.0.0.1:${httpPort}`;
      config.kubernetes['kubeconfig'] = kubeconfigWithToken(cluster, token, tmp);
      const configFile = join(tmp, 'config.yaml');
      writeFileSync(configFile, stringify(config));
      // For the issuance RBAC (below): the Lease holder issues this into another namespace.
      for (const doc of [
        {
          apiVersion: 'envoy-sds.io/v1alpha1',
          kind: 'Issuer',
          metadata: { name: 'selfsigned', namespace: 'apps' },
          spec: { selfSigned: {} },
        },
        {
          apiVersion: 'envoy-sds.io/v1alpha1',
          kind: 'Certificate',
          metadata: { name: 'issued', namespace: 'apps' },
          spec: {
            secretName: 'issued-tls',
            commonName: 'issued.apps.example',
            dnsNames: ['issued.apps.example'],
            privateKey: { algorithm: 'ECDSA', size: 256 },
            issuerRef: { name: 'selfsigned', kind: 'Issuer' },
          },
        },
      ]) {
        await admin.client.request('POST', `/apis/envoy-sds.io/v1alpha1/namespaces/apps/${doc.kind.toLowerCase()}s`, { body: doc });
      }
      const log: string[] = [];
      server = spawn(process.execPath, ['dist/src/cli.js', 'serve', '--config', configFile], {
        env: { ...process.env, POD_NAME: 'envoy-sds-local-0', POD_NAMESPACE: NS },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
      server.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
      const exited = new Promise<number | null>((resolve) => server!.once('exit', resolve));

      const readyz = async (): Promise<number> => {
        try {
          return (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status;
        } catch {
          return 0;
        }
      };
      await Promise.race([
        eventually(async () => (await readyz()) === 200, 60_000, `/readyz 200 (log:\n${log.join('').slice(-3000)})`),
        exited.then((code) => assert.fail(`the server exited (${code}) before it was ready:\n${log.join('').slice(-3000)}`)),
      ]);

      // A gateway whose ServiceAccount may get apps/web-tls receives it over TLS with its
      // token: the chart's review ClusterRole lets the server ask TokenReview and SAR.
      const web = makeLeaf(ca, ['web.apps.example']);
      await admin.putSecret('apps', 'web-tls', { 'tls.crt': web.certPem, 'tls.key': web.keyPem });
      await admin.allowSecretRead('apps', { namespace: 'gateway', name: 'gateway' }, 'gateway-web-tls', ['web-tls']);
      const gatewayToken = await admin.serviceAccountToken('gateway', 'gateway');
      const fetchAs = (tok: string) =>
        spawnSync(
          process.execPath,
          [
            'dist/src/cli.js',
            'fetch',
            'kubernetes://apps/web-tls',
            '--server',
            `localhost:${grpcPort}`,
            '--ca',
            join(tmp, 'ca.crt'),
            '--token',
            tok,
            '--timeout',
            '5',
          ],
          { encoding: 'utf8' },
        );
      let got = fetchAs(gatewayToken);
      for (let i = 0; i < 20 && got.status !== 0; i++) got = fetchAs(gatewayToken); // the Secret reaches the watch
      assert.equal(got.status, 0, `${got.stdout}\n${got.stderr}\n${log.join('').slice(-2000)}`);
      assert.match(got.stdout, /web\.apps\.example/);
      assert.doesNotMatch(got.stdout, /PRIVATE KEY/);
      const strangerToken = await admin.serviceAccountToken('gateway', 'stranger');
      assert.equal(fetchAs(strangerToken).status, 1, 'no RoleBinding, no secret');

      await eventually(
        async () => {
          try {
            const s = await admin.client.request<{ type?: string; data?: Record<string, string> }>(
              'GET',
              '/api/v1/namespaces/apps/secrets/issued-tls',
            );
            return s.type === 'kubernetes.io/tls' && Boolean(s.data?.['tls.crt']);
          } catch {
            return false;
          }
        },
        60_000,
        `Secret apps/issued-tls written by the server (log:\n${log.join('').slice(-3000)})`,
      );
      const lease = await admin.client.request<{ spec?: { holderIdentity?: string } }>(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/envoy-sds-issuance`,
      );
      assert.equal(lease.spec?.holderIdentity, 'envoy-sds-local-0');
      assert.ok(!log.join('').includes(token) && !log.join('').includes(gatewayToken), 'no token in the log');

      server.kill('SIGTERM');
      assert.equal(await exited, 0, 'SIGTERM drains and exits 0');
      server = undefined;
    },
  );

  await t.test(
    'tls.source issuance: the issuance-only Deployment, run here with its installed config and ServiceAccount, issues the serving certificate',
    async () => {
      const release = 'tls-envoy-sds';
      const ns = 'sds-issued';
      await admin.create(
        '/api/v1/namespaces',
        { metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
        true,
      );
      await helmRun([
        'install',
        release,
        CHART,
        '-n',
        ns,
        '-f',
        `${CHART}/ci/issued-tls-values.yaml`,
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--wait=false',
      ]);
      const dep = await admin.client.request<{
        spec: { template: { spec: { volumes: Array<{ name: string; secret?: { secretName: string } }> } } };
      }>('GET', `/apis/apps/v1/namespaces/${ns}/deployments/${release}`);
      assert.equal(
        dep.spec.template.spec.volumes.find((v) => v.name === 'tls')?.secret?.secretName,
        `${release}-tls`,
        'the server mounts the Secret the issuer writes',
      );

      const cm = await admin.client.request<{ data: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${ns}/configmaps/${release}-tls-issuer-config`,
      );
      const config = parseYaml(cm.data['config.yaml']!) as Record<string, unknown> & {
        grpc: { unix: Record<string, unknown> };
        http: Record<string, unknown>;
        kubernetes: Record<string, unknown>;
      };
      const dir = mkdtempSync(join(tmp, 'issuer-'));
      const token = await admin.serviceAccountToken(ns, `${release}-tls-issuer`, [cluster.serviceAccountIssuer]);
      config['dataDir'] = join(dir, 'data');
      config.grpc.unix['path'] = join(dir, 'sds.sock');
      config.http['address'] = `127.0.0.1:${await freePort()}`;
      config.kubernetes['kubeconfig'] = kubeconfigWithToken(cluster, token, dir);
      writeFileSync(join(dir, 'config.yaml'), stringify(config));
      const log: string[] = [];
      server = spawn(process.execPath, ['dist/src/cli.js', 'serve', '--config', join(dir, 'config.yaml')], {
        env: { ...process.env, POD_NAME: 'tls-issuer-local-0', POD_NAMESPACE: ns },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
      server.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
      const exited = new Promise<number | null>((resolve) => server!.once('exit', resolve));

      type TlsSecret = { type?: string; data?: Record<string, string> };
      const secret = async (name: string): Promise<TlsSecret | undefined> =>
        admin.client.request<TlsSecret>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`).catch(() => undefined);
      await Promise.race([
        eventually(
          async () => Boolean((await secret(`${release}-tls`))?.data?.['tls.crt']),
          60_000,
          `Secret ${release}-tls (log:\n${log.join('').slice(-3000)})`,
        ),
        exited.then((code) => assert.fail(`the issuer exited (${code}):\n${log.join('').slice(-3000)}`)),
      ]);
      const pem = (s: TlsSecret | undefined, key: string): string => Buffer.from(s?.data?.[key] ?? '', 'base64').toString('utf8');
      const served = await secret(`${release}-tls`);
      assert.equal(served?.type, 'kubernetes.io/tls');
      const leaf = new X509Certificate(pem(served, 'tls.crt'));
      assert.match(
        leaf.subjectAltName ?? '',
        new RegExp(`DNS:${release}\\.${ns}\\.svc\\.cluster\\.local`),
        'names the Service gateways dial',
      );
      const ca = new X509Certificate(pem(await secret(`${release}-ca`), 'tls.crt'));
      assert.ok(ca.ca, 'the CA Secret holds a CA');
      assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'the serving certificate is signed by the CA gateways are given');
      assert.equal(pem(served, 'ca.crt').trim(), ca.toString().trim(), 'ca.crt in the served Secret is that CA');
      assert.ok(!log.join('').includes(token), 'no token in the log');
      server.kill('SIGTERM');
      assert.equal(await exited, 0);
      server = undefined;
    },
  );
});
