// `envoy-sds renew` in Kubernetes, against a real kube-apiserver with two replicas:
// - Certificates as custom resources: `renew --kubernetes` sets the Issuing condition
//   (ManuallyTriggered) in the status subresource, as `cmctl renew` does, with the
//   caller's own credentials; whichever replica leads re-issues.
// - Certificates from the config file: the HTTP control stays; a follower answers with
//   the leader's name instead of "no Certificate".
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { renewCommand } from '../../src/issuance/renew-command.js';
import { ANNOTATIONS } from '../../src/issuance/secret-facts.js';
import { V, tempDir } from '../issuance/engine-support.js';
import { makeCa } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { caIssuedCertificate, installCrds } from './issuance-resources.js';
import { clusterOrSkip, eventually, KubeAdmin, startKubeSdsServer } from './kube-test-env.js';

type Condition = { type: string; status: string; reason?: string };
type CertObj = { status?: { conditions?: Condition[]; revision?: number } };

async function renew(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (c: Buffer) => (o += c.toString()));
  err.on('data', (c: Buffer) => (e += c.toString()));
  const code = await renewCommand(args, out, err);
  return { code, out: o, err: e };
}

test('renew in Kubernetes: the Issuing condition for custom resources, the leader named by a follower otherwise', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop();
    admin.close();
    await cluster.stop();
  });
  await installCrds(admin);
  const secretRevision = async (ns: string, name: string) =>
    (
      await admin.client
        .request<{ metadata: { annotations?: Record<string, string> } }>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`)
        .catch(() => undefined)
    )?.metadata.annotations?.[ANNOTATIONS.revision];

  await t.test('renew --kubernetes sets Issuing=True (ManuallyTriggered); the leading replica re-issues', async () => {
    const ns = await admin.namespace('renew-cr');
    const api = `/apis/${V}/namespaces/${ns}`;
    const certificate = () => admin.client.request<CertObj>('GET', `${api}/certificates/web`);
    const ca = makeCa('Renew CA');
    await admin.putSecret(ns, 'root-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
    const [issuer, web] = caIssuedCertificate(ns) as Array<Record<string, unknown>>;
    await admin.create(`${api}/issuers`, issuer!);
    await admin.create(`${api}/certificates`, web!);
    for (const identity of ['replica-a', 'replica-b']) {
      servers.push(
        await startKubeSdsServer(cluster, {
          namespaces: [ns],
          doc: {
            dataDir: tempDir('renew-cr-'),
            issuance: {
              customResources: true,
              backoff: { initial: '200ms', max: '1s' },
              leaderElection: { namespace: ns, identity, leaseDuration: '2s', renewDeadline: '1s' },
            },
          },
        }),
      );
    }
    await eventually(async () => (await certificate()).status?.revision === 1, 30_000, 'revision 1');
    const r = await renew([`${ns}/web`, '--kubernetes', '--kubeconfig', cluster.kubeconfigPath]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Issuing=True, ManuallyTriggered/);
    await eventually(
      async () => {
        const c = await certificate();
        return (
          c.status?.revision === 2 &&
          c.status.conditions?.find((x) => x.type === 'Ready')?.status === 'True' &&
          !c.status.conditions.some((x) => x.type === 'Issuing')
        );
      },
      30_000,
      'revision 2, Ready, Issuing gone',
    );
    assert.equal(await secretRevision(ns, 'web-tls'), '2');
    // Once: the request is answered, not repeated.
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal((await certificate()).status?.revision, 2);
    const missing = await renew([`${ns}/nope`, '--kubernetes', '--kubeconfig', cluster.kubeconfigPath]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no Certificate/);
  });

  await t.test('HTTP renew asked of a follower names the leader', async () => {
    const ns = await admin.namespace('renew-http');
    const ca = makeCa('Renew CA 2');
    await admin.putSecret(ns, 'root-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
    const replicas: Array<{ identity: string; server: TestServer }> = [];
    for (const identity of ['replica-1', 'replica-2']) {
      const server = await startKubeSdsServer(cluster, {
        namespaces: [ns],
        doc: {
          trustLoopback: true, // the HTTP renew control is used from loopback (off by default in Kubernetes)
          dataDir: tempDir('renew-http-'),
          issuance: {
            backoff: { initial: '200ms', max: '1s' },
            leaderElection: { namespace: ns, identity, leaseDuration: '2s', renewDeadline: '1s' },
            resources: caIssuedCertificate(ns),
          },
        },
      });
      servers.push(server);
      replicas.push({ identity, server });
    }
    await eventually(async () => (await secretRevision(ns, 'web-tls')) === '1', 30_000, 'issued once');
    // Ask both: the leader accepts (once: renewals are rate-limited per certificate), the
    // follower names it once it has read the Lease since the leader took it.
    const ask = async (r: { identity: string; server: TestServer }) => ({
      identity: r.identity,
      ...(await renew([`${ns}/web`, '--http', r.server.httpAddress!])),
    });
    let leader: Awaited<ReturnType<typeof ask>> | undefined;
    let follower: Awaited<ReturnType<typeof ask>> | undefined;
    await eventually(
      async () => {
        for (const r of replicas) {
          if (leader?.identity === r.identity) continue;
          const a = await ask(r);
          if (a.code === 0) leader = a;
          else follower = a;
        }
        return leader !== undefined && follower !== undefined && /the leader is/.test(follower.err);
      },
      20_000,
      'one replica to accept and the other to name it',
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify({ leader, follower })}`);
    });
    assert.match(follower!.err, new RegExp(`the leader is ${leader!.identity}`), follower!.err);
    assert.doesNotMatch(follower!.err, /no Certificate/);
  });
});
