// Keys the server should never serve: the issuance engine's CA key pair (reachable by a
// wildcard rule before), and, with a warning, any other certificate with CA:TRUE.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { caKeyNames } from '../../src/issuance/ca-key-names.js';
import { parseIssuanceConfig } from '../../src/issuance/issuance-config.js';
import { secretName } from '../../src/kubernetes/kubernetes-names.js';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { makeCa } from '../support/openssl-certs.js';
import { metricTotal, startTestServer, tls, until, type TestServer } from '../support/test-server.js';
import { selfSignedCaChain, tempDir, V } from '../issuance/engine-support.js';

const webCertificate = {
  apiVersion: V,
  kind: 'Certificate',
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    secretName: 'web-tls',
    dnsNames: ['web.example.com'],
    issuerRef: { name: 'ca', kind: 'ClusterIssuer' },
    privateKey: { algorithm: 'ECDSA' },
  },
};

async function fetchWhenStored(server: TestServer, envoy: FakeEnvoy, name: string) {
  await until(() => server.store.get(name) !== undefined, 30_000, `${name} in the store`);
  return envoy.fetch([name]);
}

describe("the issuance engine's CA", () => {
  let server: TestServer;
  let envoy: FakeEnvoy;
  before(async () => {
    // The test server's rule lets loopback read "*": the wildcard that used to hand out the CA key.
    server = await startTestServer({
      dataDir: tempDir('edges-ca-'),
      issuance: { resources: selfSignedCaChain({ leafExtra: [webCertificate] }) },
    });
    envoy = new FakeEnvoy(server.grpcAddress!);
  });
  after(async () => {
    envoy?.close();
    await server?.stop();
  });

  test('a wildcard rule does not hand out the CA private key: the CA is served only as its -cacert bundle', async () => {
    const web = await fetchWhenStored(server, envoy, 'web-tls');
    assert.ok(web.secrets[0]?.tls_certificate, 'a leaf from the CA is served');
    const bundle = await fetchWhenStored(server, envoy, 'root-ca-cacert');
    assert.ok(bundle.secrets[0]?.validation_context, 'the CA bundle is served');
    assert.equal(bundle.secrets[0]?.tls_certificate, undefined);
    // The key pair is not even loaded for serving; and were it there, the policy would withhold it.
    assert.equal(server.store.get('root-ca'), undefined);
    await assert.rejects(envoy.fetch(['root-ca']), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
    // A stream asking for it gets nothing, as for a name that does not exist.
    const s = envoy.sotw();
    s.request({ names: ['root-ca'] });
    await s.nothing();
    assert.ok(server.logs.some((l) => l['msg']?.toString().includes('CA private key is never served') && l['secret'] === 'root-ca'));
    assert.ok(!server.logText().includes('PRIVATE KEY'));
  });
});

describe('a CA key pair that reaches the store anyway (a Kubernetes Secret named by an issuer)', () => {
  test('is denied to every caller, marked withheld in /status, and not counted as a served warning', async () => {
    const ca = makeCa('Kube CA');
    // As the engine names an Issuer's CA Secret in Kubernetes mode; only its names matter here.
    const server = await startTestServer({}, { caKeyNames: new Set(['kubernetes://apps/apps-ca']) });
    const envoy = new FakeEnvoy(server.grpcAddress!);
    try {
      server.put('kubernetes://apps/apps-ca', tls(ca));
      await assert.rejects(envoy.fetch(['kubernetes://apps/apps-ca']), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
      const status = (await (await fetch(`http://${server.httpAddress}/status`)).json()) as {
        secrets: Array<{ name: string; withheld?: string }>;
      };
      assert.match(status.secrets.find((s) => s.name === 'kubernetes://apps/apps-ca')!.withheld ?? '', /never served/);
      const metrics = await (await fetch(`http://${server.httpAddress}/metrics`)).text();
      assert.match(metrics, /^envoy_sds_secrets_with_warnings 0$/m);
    } finally {
      envoy.close();
      await server.stop();
    }
  });
});

describe('serveCAPrivateKey: true', () => {
  test('an explicit opt-in on the Certificate serves the CA key, with a CA:TRUE warning in status, log and metric', async () => {
    const resources = selfSignedCaChain() as Array<{ kind: string; spec: Record<string, unknown> }>;
    resources[1]!.spec['serveCAPrivateKey'] = true;
    const server = await startTestServer({ dataDir: tempDir('edges-ca-optin-'), issuance: { resources } });
    const envoy = new FakeEnvoy(server.grpcAddress!);
    try {
      const r = await fetchWhenStored(server, envoy, 'root-ca');
      assert.ok(r.secrets[0]?.tls_certificate);
      assert.match(server.store.get('root-ca')!.warnings.join('\n'), /CA:TRUE/);
      assert.equal(await metricTotal(await metricGauge(server, 'envoy_sds_secrets_with_warnings')), 1);
      assert.ok(server.logs.some((l) => l['msg'] === 'serving secret with warnings' && l['secret'] === 'root-ca'));
    } finally {
      envoy.close();
      await server.stop();
    }
  });
});

describe('other certificates with CA:TRUE', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('a self-signed CA:TRUE certificate (openssl req -x509) is served with a warning in status, log and metric', async () => {
    const selfSigned = makeCa('made with openssl req -x509');
    server.put('legacy', tls(selfSigned));
    const envoy = new FakeEnvoy(server.grpcAddress!);
    try {
      assert.ok((await envoy.fetch(['legacy'])).secrets[0]?.tls_certificate, 'still served');
    } finally {
      envoy.close();
    }
    const status = (await (await fetch(`http://${server.httpAddress}/status`)).json()) as {
      secrets: Array<{ name: string; warnings: string[] }>;
    };
    assert.match(status.secrets.find((s) => s.name === 'legacy')!.warnings.join('\n'), /CA:TRUE/);
    assert.ok(server.logs.some((l) => l['msg'] === 'serving secret with warnings' && l['secret'] === 'legacy'));
    const metrics = await (await fetch(`http://${server.httpAddress}/metrics`)).text();
    assert.match(metrics, /^envoy_sds_secrets_with_warnings 1$/m);
  });
});

describe('which names are a CA key', () => {
  const parse = (resources: unknown[], kubernetes = false) =>
    parseIssuanceConfig({ resources }, { baseDir: '/', reservedNames: [], kubernetes });

  test("an isCA Certificate's Secret and a CA issuer's ca.secretName, named as the persister serves them", () => {
    const config = parse(selfSignedCaChain({ leafExtra: [webCertificate] }));
    assert.deepEqual([...caKeyNames(config, (_ns, s) => s)], ['root-ca']);
    assert.deepEqual([...caKeyNames(config, secretName)], ['kubernetes://cert-manager/root-ca']);
  });

  test('an issuer whose CA Secret is made by no Certificate is withheld too, unless the issuer opts in', () => {
    const only = [{ apiVersion: V, kind: 'Issuer', metadata: { name: 'ca', namespace: 'apps' }, spec: { ca: { secretName: 'apps-ca' } } }];
    assert.deepEqual([...caKeyNames(parse(only), secretName)], ['kubernetes://apps/apps-ca']);
    const optIn = [{ ...only[0]!, spec: { ca: { secretName: 'apps-ca', serveCAPrivateKey: true } } }];
    assert.deepEqual([...caKeyNames(parse(optIn), secretName)], []);
  });
});

async function metricGauge(server: TestServer, name: string) {
  const m = server.metrics.registry.getSingleMetric(name);
  assert.ok(m, name);
  return m as unknown as { get(): Promise<{ values: Array<{ value: number }> }> };
}
