// Fleet-wide delivery status against a real API server: two server replicas, a gateway
// on each (one ACKs, one NACKs); either replica answers for both, through the
// ConfigMap each replica publishes; a stopped replica's report goes with it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { KubeApiError } from '../../src/kubernetes/kube-errors.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { clusterOrSkip, envoyWithToken, eventually, KubeAdmin, startKubeSdsServer, untilReady } from './kube-test-env.js';

const CLI = resolve('dist/src/cli.js');

async function status(server: TestServer, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, 'status', '--http', server.httpAddress!, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

test('fleet-wide delivery status across two replicas', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    admin.close();
    await cluster.stop();
  });

  const ns = await admin.namespace('fleet');
  const ca = makeCa('Fleet CA');
  const leaf = makeLeaf(ca, ['web.example.com']);
  await admin.putSecret(ns, 'web-tls', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem });
  const token = await admin.serviceAccountToken(ns, 'gw');
  await admin.allowSecretRead(ns, { namespace: ns, name: 'gw' }, 'gw-reads');
  const replica = async (name: string) => {
    const s = await startKubeSdsServer(cluster, {
      namespaces: [ns],
      kubernetes: { deliveryStatus: { namespace: ns, replica: name, publishSeconds: 0.2 } },
    });
    servers.push(s);
    await untilReady(s, 30_000);
    return s;
  };
  const a = await replica('sds-a');
  const b = await replica('sds-b');
  const name = `kubernetes://${ns}/web-tls`;

  const gwA = envoyWithToken(a, token, 'gw-a');
  const gwB = envoyWithToken(b, token, 'gw-b');
  t.after(() => {
    gwA.close();
    gwB.close();
  });
  const sa = gwA.sotw();
  sa.request({ names: [name] });
  sa.ack(await sa.response(15_000));
  const sb = gwB.sotw();
  sb.request({ names: [name] });
  sb.nack(await sb.response(15_000), 'Failed to load certificate chain from <inline>: too old');

  // Either replica answers for both gateways.
  for (const server of [a, b]) {
    let last = { code: -1, stdout: '', stderr: '' };
    await eventually(
      async () => {
        last = await status(server, '-o', 'wide');
        return /^gw-a .* sds-a .* SYNCED /m.test(last.stdout) && /^gw-b .* sds-b .* NACKED /m.test(last.stdout);
      },
      15_000,
      `fleet status from ${server.httpAddress}`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${JSON.stringify(last)}`);
    });
    assert.equal(last.code, 1, 'a NACKED subscription fails the check');
    assert.match(last.stdout, /rejected \w{8}: "Failed to load certificate chain from <inline>: too old"/);
    assert.doesNotMatch(last.stderr, /this replica's streams only/);
  }
  const cms = await admin.client.request<{ items: Array<{ metadata: { name: string } }> }>('GET', `/api/v1/namespaces/${ns}/configmaps`, {
    query: { labelSelector: 'envoy-sds.io/delivery-report=true' },
  });
  assert.deepEqual(cms.items.map((c) => c.metadata.name).sort(), ['envoy-sds-delivery-sds-a', 'envoy-sds-delivery-sds-b']);
  // What a replica publishes carries no key material.
  const published = JSON.stringify(cms);
  assert.doesNotMatch(published, /PRIVATE KEY|BEGIN CERTIFICATE/);

  // The gateway on sds-b is fixed once B stops: its report is deleted with it.
  const stopped = servers.pop()!;
  await stopped.stop();
  await assert.rejects(
    admin.client.request('GET', `/api/v1/namespaces/${ns}/configmaps/envoy-sds-delivery-sds-b`),
    (e: unknown) => e instanceof KubeApiError && e.status === 404,
  );
  await eventually(
    async () => {
      const r = await status(a);
      return r.code === 0 && /^gw-a .* SYNCED/m.test(r.stdout) && !/gw-b/.test(r.stdout);
    },
    15_000,
    'only gw-a, SYNCED, once sds-b stopped',
  );
});
