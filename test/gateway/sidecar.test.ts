// Sidecar mode: the server in the gateway's pod on a Unix socket. A socket caller is the
// pod's own ServiceAccount (its projected token, reviewed like any caller's), so RBAC and
// the Gateway binding decide as for a remote gateway; `sds://` names (Istio's
// `credentialName: sds://…` against /var/run/secrets/credential-uds/socket) stand for the
// Kubernetes names. Envoy Gateway's translator, given a Secret of type
// gateway.envoyproxy.io/sds that points at the socket, produces a cluster and secret name
// this server answers, over that cluster's pipe address.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { b64, clusterWithAdmin, eventually, startKubeSdsServer, untilReady } from '../k8s/kube-test-env.js';
import { gatewayPodToken } from './gateway-env.js';

/** egctl and sds-translate, built (and cached) by the harness script when missing. */
function envoyGatewayTools(): { egctl: string; translate: string } {
  const dir = execFileSync('bash', ['test/harness/envoy-gateway/build.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
  return { egctl: join(dir, 'egctl'), translate: join(dir, 'sds-translate') };
}

interface XdsOut {
  listenerConditions: Array<{ Gateway: string; Listener: string; Type: string; Status: string; Message: string }>;
  xds: Record<string, Array<Record<string, unknown>>>;
}
const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

test('sidecar mode on a Unix socket: Istio sds:// names, Envoy Gateway SDS Secrets', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const dir = mkdtempSync(join(tmpdir(), 'sds-sidecar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCa('Sidecar CA');
  const web = makeLeaf(ca, ['www.example.com']);
  const ns = await admin.namespace('edge');
  await admin.putSecret(ns, 'web-tls', { 'tls.crt': web.certPem, 'tls.key': web.keyPem, 'ca.crt': ca.certPem });
  await admin.putSecret(ns, 'other-tls', { 'tls.crt': web.certPem, 'tls.key': web.keyPem });
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, await gatewayPodToken(admin, ns, 'edge', 'edge-6f7c', 'edge'));
  await admin.allowSecretRead(ns, { namespace: ns, name: 'edge' }, 'edge-reads-web', ['web-tls']);
  const socket = join(dir, 'sds.sock');

  const server = await startKubeSdsServer(cluster, {
    namespaces: [ns],
    kubernetes: { sidecar: { tokenFile, namespace: ns } },
    doc: { grpc: { unix: { path: socket, mode: '0600' } } },
  });
  t.after(() => server.stop());
  await untilReady(server);
  await eventually(() => server.store.get('sds://web-tls') !== undefined, 10_000, 'sds:// aliases in the store');
  const envoy = new FakeEnvoy(`unix:${socket}`, { node: { id: 'edge-6f7c', cluster: 'edge' } });
  t.after(() => envoy.close());

  await t.test("Istio's sds:// names: the pod's ServiceAccount reads what RBAC lets it, nothing more", async () => {
    for (const [name, chain] of [
      ['sds://web-tls', web.certPem],
      [`sds://${ns}/web-tls`, web.certPem],
    ] as const) {
      const s = envoy.sotw();
      s.request({ names: [name] });
      const r = await s.response(10_000);
      assert.equal(r.secrets[0]?.name, name, 'answered under the name asked for');
      assert.equal(pemOf(r.secrets[0]?.tls_certificate?.certificate_chain), chain);
      s.cancel();
    }
    const cacert = envoy.sotw();
    cacert.request({ names: ['sds://web-tls-cacert'] });
    assert.equal(pemOf((await cacert.response(10_000)).secrets[0]?.validation_context?.trusted_ca), ca.certPem);
    cacert.cancel();
    // other-tls: no RoleBinding for it.
    const denied = envoy.sotw();
    const from = server.logs.length;
    denied.request({ names: ['sds://other-tls'] });
    await eventually(() => server.logs.slice(from).some((l) => l['msg'] === 'secret name denied to caller'), 10_000, 'denial');
    await denied.nothing();
    const line = server.logs.slice(from).find((l) => l['msg'] === 'secret name denied to caller')!;
    assert.equal(line['identity'], `serviceaccount:system:serviceaccount:${ns}:edge`);
  });

  await t.test(
    "Envoy Gateway: the translator's cluster and secret name for a gateway.envoyproxy.io/sds Secret are answered here",
    async () => {
      const tools = envoyGatewayTools();
      const input = [
        'apiVersion: gateway.networking.k8s.io/v1',
        'kind: GatewayClass',
        'metadata: { name: eg }',
        'spec: { controllerName: gateway.envoyproxy.io/gatewayclass-controller }',
        '---',
        'apiVersion: gateway.networking.k8s.io/v1',
        'kind: Gateway',
        `metadata: { name: edge, namespace: ${ns} }`,
        'spec:',
        '  gatewayClassName: eg',
        '  listeners:',
        '  - { name: https, protocol: HTTPS, port: 443, hostname: www.example.com, tls: { mode: Terminate, certificateRefs: [{ name: web-sds }] } }',
        '---',
        'apiVersion: v1',
        'kind: Secret',
        `metadata: { name: web-sds, namespace: ${ns} }`,
        'type: gateway.envoyproxy.io/sds',
        `data: { secretName: ${b64('sds://web-tls')}, url: ${b64(`unix://${socket}`)} }`,
        '---',
        'apiVersion: gateway.networking.k8s.io/v1',
        'kind: HTTPRoute',
        `metadata: { name: web, namespace: ${ns} }`,
        'spec: { parentRefs: [{ name: edge }], hostnames: [www.example.com], rules: [{ backendRefs: [{ name: web, port: 80 }] }] }',
        '---',
        'apiVersion: v1',
        'kind: Service',
        `metadata: { name: web, namespace: ${ns} }`,
        'spec: { clusterIP: 10.0.0.10, ports: [{ port: 80, name: http }] }',
        '',
      ].join('\n');
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, input);
      // egctl x translate as shipped: SDS Secret references are off, the listener is refused.
      const egctl = spawnSync(tools.egctl, ['x', 'translate', '--from', 'gateway-api', '--to', 'gateway-api', '-f', file], {
        encoding: 'utf8',
      });
      assert.equal(egctl.status, 0, egctl.stderr);
      assert.match(egctl.stdout, /SDS Secret references are not enabled/);
      // The same translator with enableSDSSecretRef on: accepted, and a cluster on our socket.
      const out = JSON.parse(execFileSync(tools.translate, { input, encoding: 'utf8' })) as XdsOut;
      const conditions = out.listenerConditions.filter((c) => c.Listener === 'https');
      assert.deepEqual(conditions.map((c) => [c.Type, c.Status]).sort(), [
        ['Accepted', 'True'],
        ['Programmed', 'True'],
        ['ResolvedRefs', 'True'],
      ]);
      const listenerText = JSON.stringify(out.xds[LISTENER]);
      const sdsConfigs = [
        ...listenerText.matchAll(
          /"tlsCertificateSdsSecretConfigs":\[\{"name":"([^"]+)","sdsConfig":\{"apiConfigSource":\{"apiType":"([A-Z_]+)","grpcServices":\[\{"envoyGrpc":\{"clusterName":"([^"]+)"/g,
        ),
      ];
      assert.equal(sdsConfigs.length, 1, listenerText.slice(0, 2000));
      const [, secretName, apiType, clusterName] = sdsConfigs[0]!;
      assert.equal(secretName, 'sds://web-tls');
      assert.equal(apiType, 'GRPC');
      const sdsCluster = (out.xds[CLUSTER] ?? []).find((c) => c['name'] === clusterName) as
        | {
            loadAssignment: { endpoints: Array<{ lbEndpoints: Array<{ endpoint: { address: { pipe?: { path: string } } } }> }> };
            http2ProtocolOptions?: object;
          }
        | undefined;
      assert.ok(sdsCluster, `cluster ${clusterName} in the translation`);
      assert.ok(sdsCluster.http2ProtocolOptions, 'HTTP/2, as gRPC needs');
      const pipe = sdsCluster.loadAssignment.endpoints[0]?.lbEndpoints[0]?.endpoint.address.pipe?.path;
      assert.equal(pipe, socket);
      // Play that Envoy: its cluster's pipe, its secret name, its protocol (SotW over gRPC).
      const eg = new FakeEnvoy(`unix:${pipe}`, { node: { id: `${ns}/edge`, cluster: `${ns}/edge` } });
      try {
        const s = eg.sotw();
        s.request({ names: [secretName] });
        const r = await s.response(10_000);
        assert.equal(r.secrets[0]?.name, secretName);
        assert.equal(pemOf(r.secrets[0]?.tls_certificate?.private_key), web.keyPem);
      } finally {
        eg.close();
      }
    },
  );

  await t.test("the pod's token no longer holds: the socket's callers are refused", async () => {
    writeFileSync(tokenFile, 'not-a-token');
    const s = envoy.sotw();
    s.request({ names: ['sds://web-tls'] });
    const err = await s.closedWith(10_000);
    assert.equal(err.code, grpc.status.UNAUTHENTICATED);
    assert.ok(!server.logText().includes('not-a-token'));
  });
});
