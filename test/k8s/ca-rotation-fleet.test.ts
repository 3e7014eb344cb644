// A staged CA rotation in Kubernetes mode, gated on the fleet: two replicas share issued
// Secrets and the Lease; a gateway on the replica that does not issue is slow to ACK the
// overlap bundle, and the leader's rotation waits for it (it reads that replica's delivery
// report, a ConfigMap), then re-issues and retires. The CA Secret here was put in place by
// hand (no Certificate makes it), so its successor is a copy of it with a new key.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { rotateCaCommand } from '../../src/cli/rotate-ca-command.js';
import type { CaRotationStatus } from '../../src/issuance/ca-rotation/ca-rotation.js';
import { pemOf, type SotwResponse, type SotwStream } from '../support/fake-envoy.js';
import { makeCa } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { tempDir } from '../issuance/engine-support.js';
import { caIssuedCertificate } from './issuance-resources.js';
import { clusterWithAdmin, envoyWithToken, eventually, startKubeSdsServer, untilReady } from './kube-test-env.js';

const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
const count = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;

/** An SDS stream that ACKs every push, unless told to hold them; keeps the last bundle it took. */
function follow(stream: SotwStream): { bundle: () => string; hold: (on: boolean) => void; held: () => boolean; stop: () => void } {
  let bundle = '';
  let holding = false;
  let parked: SotwResponse | undefined;
  let running = true;
  const take = (r: SotwResponse) => {
    bundle = pemOf(r.secrets[0]?.validation_context?.trusted_ca);
    stream.ack(r);
  };
  void (async () => {
    while (running) {
      const r = await stream.response(600_000).catch(() => undefined);
      if (!r) return;
      if (holding) parked = r;
      else take(r);
    }
  })();
  return {
    bundle: () => bundle,
    hold: (on) => {
      holding = on;
      if (!on && parked) take(parked);
      if (!on) parked = undefined;
    },
    held: () => parked !== undefined,
    stop: () => {
      running = false;
    },
  };
}

async function rotateCa(server: TestServer, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) =>
    new Writable({
      write: (c: Buffer, _e, cb) => {
        f(c.toString());
        cb();
      },
    });
  const code = await rotateCaCommand(
    [...args, '--http', server.httpAddress!],
    sink((s) => (out += s)),
    sink((s) => (err += s)),
  );
  return { code, out, err };
}

async function rotationOf(server: TestServer, issuer: string): Promise<CaRotationStatus | undefined> {
  const body = (await (await fetch(`http://${server.httpAddress!}/issuance/rotate-ca`)).json()) as { rotations: CaRotationStatus[] };
  return body.rotations.find((r) => r.issuer === issuer);
}

test('a CA rotation waits for a slow gateway on another replica, then re-issues and retires', async (t) => {
  const env = await clusterWithAdmin(t);
  if (!env) return;
  const { cluster, admin } = env;
  const ns = await admin.namespace('carot');
  const ca = makeCa('Fleet Rotation CA');
  await admin.putSecret(ns, 'root-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
  const token = await admin.serviceAccountToken(ns, 'gw');
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
  });
  const replica = async (name: string) => {
    const s = await startKubeSdsServer(cluster, {
      namespaces: [ns],
      kubernetes: { deliveryStatus: { namespace: ns, replica: name, publishSeconds: 0.2 } },
      doc: {
        trustLoopback: true, // rotate-ca is sent from loopback (off by default in Kubernetes)
        dataDir: tempDir('kube-carot-'),
        issuance: {
          backoff: { initial: '200ms', max: '1s' },
          leaderElection: { namespace: ns, identity: name, leaseDuration: '2s', renewDeadline: '1s' },
          caRotation: { checkInterval: '200ms', reissueWindow: '1s', ackTimeout: '120s', resumeGrace: '1s' },
          resources: caIssuedCertificate(ns),
        },
      },
    });
    servers.push(s);
    await untilReady(s, 30_000);
    return s;
  };
  const a = await replica('sds-a');
  await eventually(
    async () => (await admin.client.request('GET', `/api/v1/namespaces/${ns}/secrets/web-tls`).catch(() => undefined)) !== undefined,
    20_000,
    'Secret web-tls',
  );
  const b = await replica('sds-b');
  const name = `kubernetes://${ns}/web-tls-cacert`;
  const gwA = envoyWithToken(a, token, 'gw-a');
  const gwB = envoyWithToken(b, token, 'gw-b');
  const sa = gwA.sotw();
  const sb = gwB.sotw();
  sa.request({ names: [name] });
  sb.request({ names: [name] });
  const fa = follow(sa);
  const fb = follow(sb);
  t.after(() => {
    fa.stop();
    fb.stop();
    gwA.close();
    gwB.close();
  });
  await eventually(() => count(fa.bundle()) === 1 && count(fb.bundle()) === 1, 20_000, 'both gateways hold the CA');

  // The follower names the leader; the leader starts the rotation.
  const refused = await rotateCa(b, `${ns}/ca`);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /does not issue Issuer\/.+\/ca: the leader is sds-a; ask it/);
  fb.hold(true);
  const started = await rotateCa(a, `${ns}/ca`);
  assert.equal(started.code, 0, started.err);
  const issuer = `Issuer/${ns}/ca`;

  // gw-a takes old + new; the gate waits for gw-b, which only replica sds-b's report shows.
  await eventually(() => count(fa.bundle()) === 2 && fb.held(), 20_000, 'the overlap bundle at both gateways');
  let waiting: CaRotationStatus | undefined;
  await eventually(
    async () => {
      waiting = await rotationOf(a, issuer);
      return waiting?.waitingCount === 1 && waiting.waitingFor[0]?.node === 'gw-b' && waiting.waitingFor[0].replica === 'sds-b';
    },
    20_000,
    'the leader waiting for gw-b on sds-b',
  );
  assert.equal(waiting!.phase, 'Overlap');
  const web = async () => admin.client.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${ns}/secrets/web-tls`);
  assert.ok(
    new X509Certificate(unb64((await web()).data?.['tls.crt'])).checkIssued(new X509Certificate(ca.certPem)),
    'still the old CA while gw-b lacks the new one',
  );

  fb.hold(false);
  let done: CaRotationStatus | undefined;
  await eventually(
    async () => {
      done = await rotationOf(a, issuer);
      return done?.phase === 'Complete';
    },
    60_000,
    'the rotation complete',
  );
  assert.equal(done!.overlapEnded, 'acknowledged');
  await eventually(() => count(fa.bundle()) === 1 && count(fb.bundle()) === 1, 20_000, 'both gateways without the old CA');
  const newCa = new X509Certificate(fb.bundle());
  assert.equal(newCa.fingerprint256, done!.newCA[0]!.sha256Fingerprint);
  assert.notEqual(newCa.fingerprint256, new X509Certificate(ca.certPem).fingerprint256);
  assert.equal(newCa.subject, new X509Certificate(ca.certPem).subject, 'a copy of the hand-made CA: same subject, new key');
  const leaf = new X509Certificate(unb64((await web()).data?.['tls.crt']));
  assert.ok(leaf.checkIssued(newCa) && leaf.verify(newCa.publicKey), 'web-tls re-issued from the new CA');
  const root = await admin.client.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${ns}/secrets/root-ca`);
  assert.equal(new X509Certificate(unb64(root.data?.['tls.crt'])).fingerprint256, newCa.fingerprint256);
  // The rotation's state (which held the new key until Reissue) is an Opaque Secret no name serves.
  const state = await admin.client.request<{ type?: string; data?: Record<string, string> }>(
    'GET',
    `/api/v1/namespaces/${ns}/secrets/root-ca-ca-rotation`,
  );
  assert.equal(state.type, 'Opaque');
  assert.deepEqual(Object.keys(state.data ?? {}), ['rotation.json'], 'the new key is dropped once the rotation is complete');
});
