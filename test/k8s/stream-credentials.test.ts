// Streams follow their credentials, against a real kube-apiserver: a stream whose
// ServiceAccount is deleted stops receiving pushes within the documented bound (1.5
// review intervals plus one review's round trip, after the API server itself refuses the
// token) and ends with UNAUTHENTICATED, so Envoy reconnects with its current token.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, untilReady } from './kube-test-env.js';

const WEB = 'kubernetes://apps/web-tls';
const REVIEW_INTERVAL_S = 1;
const REQUEST_TIMEOUT_S = 3; // startKubeSdsServer's requestTimeoutSeconds
/** The documented bound: 1.5 review intervals (streams on one token share reviews) plus one review's round trip. */
const BOUND_MS = (1.5 * REVIEW_INTERVAL_S + REQUEST_TIMEOUT_S) * 1000;

test('a stream whose ServiceAccount is deleted gets no push after the review bound and ends UNAUTHENTICATED', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const ca = makeCa('CA');
  const leaves = [makeLeaf(ca, ['a.example']), makeLeaf(ca, ['b.example'])];
  await admin.ensureNamespace('apps');
  await admin.ensureNamespace('gateway');
  await admin.putSecret('apps', 'web-tls', { 'tls.crt': leaves[0]!.certPem, 'tls.key': leaves[0]!.keyPem });
  const gw = { namespace: 'gateway', name: 'gw' };
  const token = await admin.serviceAccountToken('gateway', 'gw');
  // The RoleBinding outlives the ServiceAccount: only the token's own review can stop it.
  await admin.allowSecretRead('apps', gw, 'gw-web', ['web-tls']);
  await eventually(() => admin.canGet(gw, 'apps', 'web-tls'), 10_000, 'RBAC to allow');

  const server = await startKubeSdsServer(cluster, {
    namespaces: ['apps'],
    kubernetes: { authentication: { tokenCacheSeconds: 2, reviewIntervalSeconds: REVIEW_INTERVAL_S } },
  });
  t.after(() => server.stop());
  await untilReady(server);
  await eventually(() => server.store.get(WEB) !== undefined, 10_000, 'web-tls loaded');

  const envoy = envoyWithToken(server, token);
  t.after(() => envoy.close());
  const s = envoy.sotw();
  s.request({ names: [WEB] });
  s.ack(await s.response(10_000));

  await admin.client.request('DELETE', '/api/v1/namespaces/gateway/serviceaccounts/gw');
  // The API server caches accepted tokens itself (10 s by default): the bound runs from
  // the moment it refuses the token.
  const tokenRefused = async (): Promise<boolean> => {
    const r = await admin.client.request<{ status?: { authenticated?: boolean } }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['envoy-sds'] } },
    });
    return r.status?.authenticated !== true;
  };
  // Keep changing the Secret meanwhile: each version is a push the stream must not get late.
  const pushTimes: number[] = [];
  let stop = false;
  const changer = (async () => {
    for (let i = 1; !stop; i++) {
      const leaf = leaves[i % 2]!;
      await admin.putSecret('apps', 'web-tls', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem });
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const reader = (async () => {
    while (!s.ended) {
      const r = await s.response(60_000).catch(() => undefined);
      if (!r) break;
      pushTimes.push(performance.now());
      s.ack(r);
    }
  })();
  await eventually(tokenRefused, 30_000, 'the API server to refuse the deleted ServiceAccount token');
  const refusedAt = performance.now();
  const err = await s.closedWith(BOUND_MS + 5_000);
  const endedAfter = performance.now() - refusedAt;
  stop = true;
  await changer;
  await reader;
  assert.equal(err.code, grpc.status.UNAUTHENTICATED);
  assert.match(err.details, /no longer accepted/);
  assert.ok(!server.logText().includes(token), 'the token is never logged');
  const late = pushTimes.filter((p) => p > refusedAt + BOUND_MS);
  assert.deepEqual(late, [], `no push later than ${BOUND_MS} ms after the token was refused`);
  t.diagnostic(
    `API server refused the token -> stream ended after ${endedAfter.toFixed(0)} ms (bound ${BOUND_MS} ms); ${pushTimes.length} pushes in all`,
  );
  // The same token cannot open a new stream.
  const again = envoy.sotw();
  again.request({ names: [WEB] });
  assert.equal((await again.closedWith(10_000)).code, grpc.status.UNAUTHENTICATED);
});
