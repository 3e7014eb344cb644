// Lists in bounded memory, scaled down, against a real kube-apiserver: Secrets are listed
// in small pages, each streamed and reduced item by item; every TLS Secret arrives, large
// Opaque Secrets are parsed and dropped, and the watch follows from the list.
// (The full-size figures come from bench/kubernetes-memory.ts, not from npm test.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { clusterWithAdmin, eventually, startKubeSdsServer, untilReady } from './kube-test-env.js';

test('a paged, streamed list loads every TLS Secret among large Opaque ones', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const ca = makeCa('CA');
  const leaves = [makeLeaf(ca, ['a.example']), makeLeaf(ca, ['b.example'])];
  await admin.ensureNamespace('apps');
  for (let i = 0; i < 40; i++) {
    const leaf = leaves[i % 2]!;
    await admin.putSecret('apps', `tls-${i}`, { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem });
    if (i % 4 === 0) await admin.putSecret('apps', `blob-${i}`, { blob: randomBytes(100 * 1024).toString('base64') }, 'Opaque');
  }
  const server = await startKubeSdsServer(cluster, { namespaces: ['apps'], kubernetes: { watch: { pageSize: 7 } } });
  t.after(() => server.stop());
  await untilReady(server);
  await eventually(
    () => Array.from({ length: 40 }, (_, i) => server.store.get(`kubernetes://apps/tls-${i}`)).every(Boolean),
    20_000,
    'all 40 TLS Secrets',
  );
  for (let i = 0; i < 40; i++) {
    assert.equal(server.store.get(`kubernetes://apps/tls-${i}-cacert`)?.material.kind, 'validation_context');
  }
  assert.equal(server.store.get('kubernetes://apps/blob-0'), undefined, 'an Opaque Secret without a TLS pair gives no name');
  // The watch goes on from the last page's resourceVersion.
  await admin.deleteSecret('apps', 'tls-3');
  await eventually(() => server.store.get('kubernetes://apps/tls-3') === undefined, 30_000, 'the deletion to reach the store');
  assert.ok(server.store.get('kubernetes://apps/tls-4'), 'the others stay');
});
