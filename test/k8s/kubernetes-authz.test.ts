// Who may read what, against a real kube-apiserver: ServiceAccount tokens (TokenReview,
// audience envoy-sds) and SPIFFE client certificates name the caller; RBAC decides
// (SubjectAccessReview); CA-only names are open within the caller's namespace; nobody else
// gets anything, and a denial never tells whether the Secret exists.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { CallerIdentity } from '../../src/authz/identity.js';
import { kubernetesAccess, SharedKubeClient } from '../../src/kubernetes-wiring.js';
import { silentLogger } from '../../src/observability/logger.js';
import { parseKubernetesConfig } from '../../src/config/kubernetes-config.js';
import { FakeEnvoy, pemOf, type SotwStream } from '../support/fake-envoy.js';
import { makeCa, makeLeaf, type Pair } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import {
  clientCertificate,
  clusterOrSkip,
  envoyWithToken,
  eventually,
  KubeAdmin,
  startKubeSdsServer,
  untilReady,
} from './kube-test-env.js';

const WEB = 'kubernetes://apps/web-tls';
const MISSING = 'kubernetes://apps/no-such-secret';
const DENIED_MSG = 'secret name denied to caller';

/** Waits until the server logged a denial of `name` after log line `from`. */
async function deniedAfter(server: TestServer, name: string, from: number): Promise<void> {
  await eventually(() => server.logs.slice(from).some((l) => l['msg'] === DENIED_MSG && l['secret'] === name), 10_000, `denial of ${name}`);
}

/** Opens a stream for `name` and expects the server to deny it: logged, nothing sent. */
async function expectDenied(server: TestServer, envoy: FakeEnvoy, name: string): Promise<SotwStream> {
  const from = server.logs.length;
  const s = envoy.sotw();
  s.request({ names: [name] });
  await deniedAfter(server, name, from);
  await s.nothing();
  return s;
}

test('kubernetes authorization: tokens, SPIFFE IDs, RBAC', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  const dir = mkdtempSync(join(tmpdir(), 'sds-k8s-authz-'));
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop();
    admin.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ca = makeCa('Apps CA');
  const web1 = makeLeaf(ca, ['web.apps.example']);
  const web2 = makeLeaf(ca, ['web.apps.example', 'v2.apps.example']);
  await admin.ensureNamespace('apps');
  await admin.ensureNamespace('gateway');
  await admin.putSecret('apps', 'web-tls', { 'tls.crt': web1.certPem, 'tls.key': web1.keyPem, 'ca.crt': ca.certPem });
  await admin.putConfigMap('apps', 'backend-ca', { 'ca.crt': ca.certPem });
  const gw = { namespace: 'gateway', name: 'gw' };
  const gwToken = await admin.serviceAccountToken('gateway', 'gw');

  const server = await startKubeSdsServer(cluster, { namespaces: ['apps'] });
  servers.push(server);
  await untilReady(server);
  await eventually(
    () => server.store.get('configmap://apps/backend-ca') !== undefined && server.store.get(WEB) !== undefined,
    10_000,
    'secrets loaded',
  );

  await t.test('a ServiceAccount without a RoleBinding is denied the Secret (stream and fetch)', async (st) => {
    const envoy = envoyWithToken(server, gwToken);
    st.after(() => envoy.close());
    await expectDenied(server, envoy, WEB);
    await assert.rejects(envoy.fetch([WEB]), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED);
    const denial = server.logs.findLast((l) => l['msg'] === DENIED_MSG && l['secret'] === WEB)!;
    assert.equal(denial['identity'], 'serviceaccount:system:serviceaccount:gateway:gw');
  });

  await t.test('CA-only names of another namespace need RBAC like the Secret itself (ca-names.test.ts has the rest)', async (st) => {
    // Changed deliberately (issue 13): they were open to any authenticated caller.
    const envoy = envoyWithToken(server, gwToken);
    st.after(() => envoy.close());
    await expectDenied(server, envoy, 'kubernetes://apps/web-tls-cacert');
    await expectDenied(server, envoy, 'configmap://apps/backend-ca');
  });

  await t.test('unauthenticated callers get nothing; a bad or foreign-audience token fails the stream', async (st) => {
    const anonymous = envoyWithToken(server, undefined);
    st.after(() => anonymous.close());
    for (const name of [WEB, 'kubernetes://apps/web-tls-cacert', 'configmap://apps/backend-ca']) {
      await expectDenied(server, anonymous, name);
    }
    await assert.rejects(
      anonymous.fetch(['configmap://apps/backend-ca']),
      (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED,
    );

    const otherAudience = await admin.serviceAccountToken('gateway', 'gw', [cluster.serviceAccountIssuer]);
    for (const token of ['not-a-jwt', `${gwToken.slice(0, -4)}AAAA`, otherAudience]) {
      const envoy = envoyWithToken(server, token);
      st.after(() => envoy.close());
      const s = envoy.sotw();
      s.request({ names: ['configmap://apps/backend-ca'] });
      const err = await s.closedWith(10_000);
      assert.equal(err.code, grpc.status.UNAUTHENTICATED);
      assert.ok(!(err.details ?? '').includes(token.slice(-20)), 'the token is not echoed');
    }
    for (const token of [gwToken, otherAudience]) assert.ok(!server.logText().includes(token), 'tokens are never logged');
  });

  await t.test('a denied name never reveals whether the Secret exists', async (st) => {
    const envoy = envoyWithToken(server, gwToken);
    st.after(() => envoy.close());
    const deniedBefore = (await server.metrics.denied.get()).values[0]?.value ?? 0;
    // Fetch: the same status and the same message shape.
    const errs: grpc.ServiceError[] = [];
    for (const name of [WEB, MISSING]) {
      await envoy.fetch([name]).then(
        () => assert.fail(`${name} was served`),
        (err: grpc.ServiceError) => errs.push(err),
      );
    }
    assert.deepEqual(
      errs.map((e) => e.code),
      [grpc.status.PERMISSION_DENIED, grpc.status.PERMISSION_DENIED],
    );
    assert.equal(errs[0]!.details.replace(WEB, 'NAME'), errs[1]!.details.replace(MISSING, 'NAME'));
    // Streams, SotW and Delta: nothing either way, both recorded as denied.
    const fromSingle = server.logs.length;
    await expectDenied(server, envoy, WEB);
    await expectDenied(server, envoy, MISSING);
    // Identical log lines but for the name.
    const lines = server.logs.slice(fromSingle).filter((l) => l['msg'] === DENIED_MSG);
    const shape = (l: Record<string, unknown>) => JSON.stringify({ ...l, time: 0, secret: 0, peer: 0 });
    assert.equal(shape(lines[0]!), shape(lines[1]!));
    // A request denied several names is one line (issue 11: one line per request), naming them.
    const from = server.logs.length;
    const d = envoy.delta();
    d.request({ subscribe: [WEB, MISSING] });
    await eventually(
      () => server.logs.slice(from).some((l) => l['msg'] === DENIED_MSG && l['denied'] === 2),
      10_000,
      'one denial line for both',
    );
    await d.nothing();
    assert.deepEqual(server.logs.slice(from).find((l) => l['msg'] === DENIED_MSG)!['secrets'], [WEB, MISSING]);
    const deniedAfterAll = (await server.metrics.denied.get()).values[0]?.value ?? 0;
    assert.equal(deniedAfterAll - deniedBefore, 6, 'every denial counted, existing or not');
  });

  await t.test('after the RoleBinding is created the Secret is served (within the deny cache TTL)', async (st) => {
    const envoy = envoyWithToken(server, gwToken);
    st.after(() => envoy.close());
    await expectDenied(server, envoy, WEB);
    await admin.allowSecretRead('apps', gw, 'gw-reads-web', ['web-tls']);
    // The API server's RBAC cache takes a moment too: wait until it says yes.
    await eventually(() => admin.canGet(gw, 'apps', 'web-tls'), 10_000, 'RBAC to allow the RoleBinding');
    const rbacAllows = performance.now();
    // Envoy opens a new stream when the old one ends (any close, even OK): a reconnect is
    // served as soon as the cached denial (1 s here, 5 s by default) has expired.
    let attempts = 0;
    for (;;) {
      attempts++;
      const s = envoy.sotw();
      s.request({ names: [WEB] });
      const r = await s.response(1500).catch(() => undefined);
      if (r) {
        assert.equal(pemOf(r.secrets[0]?.tls_certificate?.certificate_chain), web1.certPem);
        break;
      }
      s.cancel();
      assert.ok(attempts < 20, 'served within 20 reconnects');
    }
    st.diagnostic(
      `RoleBinding effective in RBAC -> served on a reconnect: ${(performance.now() - rbacAllows).toFixed(0)} ms, ${attempts} stream(s)`,
    );
  });

  await t.test('after the RoleBinding is deleted the stream stops getting new versions', async (st) => {
    const envoy = envoyWithToken(server, gwToken);
    st.after(() => envoy.close());
    const s = envoy.sotw();
    s.request({ names: [WEB] });
    s.ack(await s.response(10_000));
    await admin.deleteRoleBinding('apps', 'gw-reads-web');
    await eventually(async () => !(await admin.canGet(gw, 'apps', 'web-tls')), 10_000, 'RBAC to drop the RoleBinding');
    // Until the cached allow expires (2 s here, 30 s by default) updates still arrive; then
    // the check before each push denies them.
    const leaves = [web2, web1];
    let i = 0;
    const started = performance.now();
    for (;;) {
      const leaf = leaves[i++ % 2]!;
      const from = server.logs.length;
      await admin.putSecret('apps', 'web-tls', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem });
      const outcome = await Promise.race([
        s.response(10_000).then((r) => ({ pushed: r })),
        deniedAfter(server, WEB, from).then(() => ({ pushed: undefined })),
      ]);
      if (!outcome.pushed) break;
      s.ack(outcome.pushed);
      assert.ok(performance.now() - started < 20_000, 'denied within 20 s of updates');
      await new Promise((r) => setTimeout(r, 200)); // pace the updates while the cached allow runs out
    }
    st.diagnostic(`RoleBinding deleted -> first update withheld after ${i} updates, ${(performance.now() - started).toFixed(0)} ms`);
    await s.nothing();
    // The store has the new version; the stream never got it.
    const status = server.registry.list().find((x) => x.names.get(WEB)?.denied);
    assert.ok(status, 'the stream records the name as denied');
  });

  await t.test('the authorizer tells a waiting stream when a denied name becomes readable (watchGrant)', async () => {
    // The hook a stream driver can use instead of waiting for a reconnect (see the report).
    const settings = parseKubernetesConfig({
      kubeconfig: cluster.kubeconfigPath,
      namespaces: ['apps'],
      authorization: { denyCacheSeconds: 0.5 },
    });
    const client = new SharedKubeClient(settings);
    const access = kubernetesAccess(settings, { client: client.get, logger: silentLogger(), rules: [], trustLoopback: false });
    t.after(() => {
      access.stop();
      client.close();
    });
    const identity: CallerIdentity = {
      kind: 'serviceaccount',
      principals: ['system:serviceaccount:gateway:gw'],
      peer: 'test',
      serviceAccount: gw,
    };
    const authz = access.authorizer;
    assert.equal(await authz.canRead(identity, WEB), false);
    let granted = false;
    const cancel = authz.watchGrant(identity, WEB, () => (granted = true));
    await admin.allowSecretRead('apps', gw, 'gw-reads-web-2', ['web-tls']);
    const created = performance.now();
    await eventually(() => granted, 15_000, 'the grant notification');
    cancel();
    t.diagnostic(`RoleBinding created -> watchGrant notified: ${(performance.now() - created).toFixed(0)} ms`);
    assert.equal(await authz.canRead(identity, WEB), true);
  });

  await t.test('mTLS: a SPIFFE ID of the trust domain is a ServiceAccount; others get no Kubernetes name', async (st) => {
    const serverCa = makeCa('SDS server CA');
    const serverCert = makeLeaf(serverCa, ['localhost']);
    const clientCa = makeCa('Mesh CA');
    writeFileSync(join(dir, 'server.crt'), serverCert.certPem);
    writeFileSync(join(dir, 'server.key'), serverCert.keyPem);
    writeFileSync(join(dir, 'client-ca.crt'), clientCa.certPem);
    const tlsServer = await startKubeSdsServer(cluster, {
      namespaces: ['apps'],
      kubernetes: { authentication: { spiffeTrustDomain: 'cluster.local' } },
      doc: {
        grpc: {
          tcp: {
            address: '127.0.0.1:0',
            tls: {
              certFile: join(dir, 'server.crt'),
              keyFile: join(dir, 'server.key'),
              clientCaFile: join(dir, 'client-ca.crt'),
              requireClientCert: true,
            },
          },
        },
      },
    });
    servers.push(tlsServer);
    await untilReady(tlsServer);
    await eventually(() => tlsServer.store.get(WEB) !== undefined, 10_000, 'web-tls loaded');
    const mtls = (client: Pair): FakeEnvoy => {
      const e = new FakeEnvoy(tlsServer.grpcAddress!.replace('127.0.0.1', 'localhost'), {
        credentials: grpc.credentials.createSsl(Buffer.from(serverCa.certPem), Buffer.from(client.keyPem), Buffer.from(client.certPem)),
      });
      st.after(() => e.close());
      return e;
    };
    // gw may read web-tls (RoleBinding gw-reads-web-2 from the test above).
    const allowed = mtls(clientCertificate(clientCa, 'URI:spiffe://cluster.local/ns/gateway/sa/gw'));
    const s = allowed.sotw();
    s.request({ names: [WEB] });
    assert.ok(pemOf((await s.response(10_000)).secrets[0]?.tls_certificate?.certificate_chain).length > 0);

    const otherSa = mtls(clientCertificate(clientCa, 'URI:spiffe://cluster.local/ns/gateway/sa/someone-else'));
    await expectDenied(tlsServer, otherSa, WEB);
    const otherDomain = mtls(clientCertificate(clientCa, 'URI:spiffe://example.org/ns/gateway/sa/gw'));
    await expectDenied(tlsServer, otherDomain, WEB);
    // A certificate that names no ServiceAccount has no namespace: no CA names either
    // (changed deliberately in issue 13: they were open to any verified certificate).
    await expectDenied(tlsServer, otherDomain, 'configmap://apps/backend-ca');
  });
});
