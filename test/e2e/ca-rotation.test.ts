// A CA rotation seen by real TLS: two peers fed over SDS as Envoy is (test/support/
// sds-tls-peer.ts), a gateway and a backend, each with a leaf from the `ca` issuer and the
// other's `-cacert` as validation context, handshake with mutual TLS in a loop while the
// CA rotates. Staged (rotate-ca): through Overlap, Reissue and Retire, with a gateway that
// is slow to ACK the overlap bundle and a server restart mid-Reissue: zero failed
// handshakes. One step (the CA replaced, a leaf re-issued, as by hand): handshakes fail.
// The status of each phase is written to test-results/ca-rotation-phases.txt.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { rotateCaCommand } from '../../src/cli/rotate-ca-command.js';
import type { CaRotationStatus } from '../../src/issuance/ca-rotation/ca-rotation.js';
import { tempDir, V } from '../issuance/engine-support.js';
import { HandshakeLoop, SdsTlsPeer } from '../support/sds-tls-peer.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const OUT = resolve(process.env['TEST_OUTPUT_DIR'] ?? 'test-results');

function resources(): unknown[] {
  const leaf = (name: string) => ({
    apiVersion: V,
    kind: 'Certificate',
    metadata: { name, namespace: 'default' },
    spec: {
      secretName: name,
      dnsNames: [`${name}.test`],
      usages: ['server auth', 'client auth'],
      privateKey: { algorithm: 'ECDSA', size: 256 },
      issuerRef: { name: 'ca', kind: 'ClusterIssuer' },
    },
  });
  return [
    { apiVersion: V, kind: 'ClusterIssuer', metadata: { name: 'selfsigned' }, spec: { selfSigned: {} } },
    {
      apiVersion: V,
      kind: 'Certificate',
      // A ClusterIssuer's CA Secret lives in the cluster resource namespace.
      metadata: { name: 'root-ca', namespace: 'cert-manager' },
      spec: {
        isCA: true,
        commonName: 'Rotation Test Root',
        secretName: 'root-ca',
        duration: '8760h',
        privateKey: { algorithm: 'ECDSA', size: 256 },
        issuerRef: { name: 'selfsigned', kind: 'ClusterIssuer' },
      },
    },
    { apiVersion: V, kind: 'ClusterIssuer', metadata: { name: 'ca' }, spec: { ca: { secretName: 'root-ca' } } },
    leaf('gateway'),
    leaf('backend'),
  ];
}

function start(dataDir: string, caRotation: Record<string, string>): Promise<TestServer> {
  // The peers reconnect within a second after a restart (their backoff is 100 ms to 1 s).
  return startTestServer({
    dataDir,
    drainSeconds: 1,
    issuance: { resources: resources(), caRotation: { resumeGrace: '1500ms', ...caRotation } },
  });
}

interface Fleet {
  gateway: SdsTlsPeer;
  backend: SdsTlsPeer;
  loop: HandshakeLoop;
  stop(): Promise<void>;
}

/** The two peers, with the gateway handshaking to the backend in a loop. */
async function fleet(target: () => string): Promise<Fleet> {
  const gateway = new SdsTlsPeer({ target, node: { id: 'gateway-1', cluster: 'gateway' }, certName: 'gateway', caName: 'backend-cacert' });
  const backend = new SdsTlsPeer({ target, node: { id: 'backend-1', cluster: 'backend' }, certName: 'backend', caName: 'gateway-cacert' });
  gateway.start();
  backend.start();
  let port: number;
  try {
    await Promise.all([gateway.ready(), backend.ready()]);
    port = await backend.server();
    await gateway.handshake(port, 'backend.test');
  } catch (err) {
    await gateway.stop();
    await backend.stop();
    throw err;
  }
  const loop = new HandshakeLoop(gateway, port, 'backend.test');
  return {
    gateway,
    backend,
    loop,
    async stop() {
      await loop.stop();
      await gateway.stop();
      await backend.stop();
    },
  };
}

async function rotateCa(http: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) =>
    new Writable({
      write(c: Buffer, _e, cb) {
        f(c.toString());
        cb();
      },
    });
  const code = await rotateCaCommand(
    [...args, '--http', http],
    sink((s) => (out += s)),
    sink((s) => (err += s)),
  );
  return { code, out, err };
}

async function rotation(http: string): Promise<CaRotationStatus | undefined> {
  const res = await fetch(`http://${http}/issuance/rotate-ca`);
  const body = (await res.json()) as { rotations: CaRotationStatus[] };
  return body.rotations.find((r) => r.issuer === 'ClusterIssuer/ca');
}

async function waitForRotation(
  server: () => TestServer,
  pred: (r: CaRotationStatus) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<CaRotationStatus> {
  const start = Date.now();
  for (;;) {
    const r = await rotation(server().httpAddress!);
    if (r && pred(r)) return r;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for the rotation: ${what}; now ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Whether the leaf (first certificate of `chain`) is signed by `caPem`. */
const signedBy = (chain: string | undefined, caPem: string) => {
  if (!chain) return false;
  const leaf = new X509Certificate(chain);
  const ca = new X509Certificate(caPem);
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
};
/** The certificate of `bundle` that is not `than`. */
const otherCa = (bundle: string, than: string) => {
  const fp = new X509Certificate(than).fingerprint256;
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? []).find(
    (p) => new X509Certificate(p).fingerprint256 !== fp,
  )!;
};
const cas = (pem: string | undefined) => (pem?.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
});

test('rotate-ca: Overlap, Reissue, Retire with a slow gateway and a restart mid-Reissue, and not one failed handshake', async () => {
  const dataDir = tempDir('ca-rotation-');
  const settings = { ackTimeout: '60s', reissueWindow: '6s', checkInterval: '200ms' };
  let server = await start(dataDir, settings);
  servers.push(server);
  const f = await fleet(() => server.grpcAddress!);
  const phases: string[] = [];
  const capture = async (label: string) => {
    const r = await rotateCa(server.httpAddress!, '--status');
    assert.equal(r.code, 0, r.err);
    phases.push(`== ${label}\n$ envoy-sds rotate-ca --status\n${r.out}`);
  };
  try {
    const oldRoot = f.gateway.material.ca!;
    assert.equal(cas(oldRoot), 1);

    // The gateway will be slow: it holds (does not apply, does not ACK) its next bundle.
    f.gateway.setPolicy('backend-cacert', 'hold');
    const started = await rotateCa(server.httpAddress!, 'ca');
    assert.equal(started.code, 0, started.err);
    assert.match(started.out, /ClusterIssuer\/ca: Overlap/);

    // Overlap: the backend takes old + new; the gate waits for the gateway alone.
    await f.backend.until(() => cas(f.backend.material.ca) === 2, 30_000, 'the backend to hold old + new');
    await f.gateway.until(() => f.gateway.holding('backend-cacert'), 30_000, 'the overlap bundle to reach the gateway');
    const waiting = await waitForRotation(
      () => server,
      (r) => r.waitingCount === 1 && r.waitingFor[0]?.node === 'gateway-1',
      'only the slow gateway behind',
    );
    assert.equal(waiting.phase, 'Overlap');
    assert.equal(waiting.waitingFor[0]!.secret, 'backend-cacert');
    await capture('Overlap, the gateway slow to ACK');
    // Several looks at the gate later, the rotation has not moved past the slow gateway.
    const checked = waiting.checkedAt!;
    const later = await waitForRotation(
      () => server,
      (r) => r.checkedAt !== undefined && r.checkedAt > checked,
      'another look at the gate',
    );
    const again = await waitForRotation(
      () => server,
      (r) => r.checkedAt !== undefined && r.checkedAt > later.checkedAt!,
      'a third look at the gate',
    );
    assert.equal(again.phase, 'Overlap', 'no leaf from the new CA while a subscriber lacks it');
    assert.ok(signedBy(f.backend.material.cert, oldRoot), 'the backend still serves a leaf of the old CA');
    const newRootPem = otherCa(f.backend.material.ca!, oldRoot);

    f.gateway.setPolicy('backend-cacert', 'apply');
    const reissue = await waitForRotation(
      () => server,
      (r) => r.phase === 'Reissue' && r.leaves !== undefined,
      'Reissue, its gate checked',
    );
    assert.equal(reissue.overlapEnded, 'acknowledged');
    await capture('Reissue');
    // The issuer's own status carries the phase, next to its Ready condition.
    const issuers = (await (await fetch(`http://${server.httpAddress!}/issuance/status`)).json()) as {
      issuers: Array<{ name: string; caRotation?: { phase: string } }>;
    };
    assert.equal(issuers.issuers.find((i) => i.name === 'ca')?.caRotation?.phase, 'Reissue');
    const status = (await (await fetch(`http://${server.httpAddress!}/status`)).json()) as {
      caRotations: Array<{ issuer: string; phase: string }>;
    };
    assert.deepEqual(
      status.caRotations.map((r) => [r.issuer, r.phase]),
      [['ClusterIssuer/ca', 'Reissue']],
    );
    const page = await (await fetch(`http://${server.httpAddress!}/`)).text();
    assert.match(page, /<h2>CA rotations<\/h2>.*ClusterIssuer\/ca.*Reissue/s);

    // The backend's leaf (first of the window) comes from the new CA; then restart the server.
    const newRoot = (await rotation(server.httpAddress!))!.newCA[0]!;
    assert.equal(new X509Certificate(newRootPem).fingerprint256, newRoot.sha256Fingerprint);
    await f.backend.until(() => signedBy(f.backend.material.cert, newRootPem), 30_000, 'the backend re-issued from the new CA');
    assert.ok(signedBy(f.gateway.material.cert, oldRoot), 'the gateway, later in the window, still has its old leaf');
    const gatewayLeafBefore = f.gateway.material.cert;
    const before = f.loop.ok;
    // Slow again from here on: Retire must wait for the gateway too.
    f.gateway.setPolicy('backend-cacert', 'hold');
    await server.stop();
    server = await start(dataDir, settings);
    servers.push(server);
    await waitForRotation(
      () => server,
      (r) => r.phase !== 'Reissue' || r.leaves !== undefined,
      'the gate checked after the restart',
    );
    await capture('Reissue, after the restart');
    const retire = await waitForRotation(
      () => server,
      (r) => r.phase === 'Retire' && r.waitingFor.some((w) => w.node === 'gateway-1'),
      'Retire, waiting for the slow gateway',
    );
    assert.ok(retire.history.some((h) => h.phase === 'Reissue'));
    assert.notEqual(f.gateway.material.cert, gatewayLeafBefore, 'the gateway got a new leaf after the restart');
    assert.ok(signedBy(f.gateway.material.cert, newRootPem));
    assert.equal(cas(f.backend.material.ca), 1, 'the backend took the bundle without the old CA');
    await capture('Retire, the gateway slow to ACK again');
    f.gateway.setPolicy('backend-cacert', 'apply');

    const done = await waitForRotation(
      () => server,
      (r) => r.phase === 'Complete',
      'Complete',
    );
    await f.gateway.until(() => cas(f.gateway.material.ca) === 1 && cas(f.backend.material.ca) === 1, 30_000, 'bundles without the old CA');
    await capture('Complete');
    assert.deepEqual(
      done.history.map((h) => h.phase),
      ['Overlap', 'Reissue', 'Retire', 'Complete'],
    );
    assert.notEqual(
      new X509Certificate(f.gateway.material.ca!).fingerprint256,
      new X509Certificate(oldRoot).fingerprint256,
      'the old CA left the bundles',
    );
    assert.equal(new X509Certificate(f.gateway.material.ca!).fingerprint256, newRoot.sha256Fingerprint);

    const n = f.loop.ok;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(f.loop.ok > n, 'handshakes go on with the new CA alone');
    assert.ok(before > 10, `handshakes ran through the rotation (${f.loop.ok})`);
    assert.deepEqual(f.loop.failures, [], 'not one failed handshake');
    process.stderr.write(
      `staged rotation: ${f.loop.ok} handshakes, ${f.loop.failures.length} failed; phases ${done.history.map((h) => `${h.phase} ${h.at}`).join(', ')}\n`,
    );

    // Metrics say where it ended.
    const metrics = await (await fetch(`http://${server.httpAddress!}/metrics`)).text();
    assert.match(metrics, /envoy_sds_ca_rotation_phase\{issuer="ClusterIssuer\/ca",phase="Complete"\} 1/);
  } finally {
    await f.stop();
    mkdirSync(OUT, { recursive: true });
    writeFileSync(resolve(OUT, 'ca-rotation-phases.txt'), phases.join('\n'));
  }
});

/** A fresh server and the two peers; `body` gets them and the CA they trust at the start. */
async function scenario(
  caRotation: Record<string, string>,
  body: (server: TestServer, f: Fleet, oldRoot: string) => Promise<void>,
): Promise<void> {
  const server = await start(tempDir('ca-rotation-'), caRotation);
  servers.push(server);
  const f = await fleet(() => server.grpcAddress!);
  try {
    await body(server, f, f.gateway.material.ca!);
  } finally {
    await f.stop();
    await server.stop();
  }
}

async function renew(http: string, id: string): Promise<void> {
  const res = await fetch(`http://${http}/issuance/renew/${id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-envoy-sds-intent': 'renew' },
    body: '{}',
  });
  assert.equal(res.status, 202, await res.text());
}

interface CertStatus {
  revision?: number;
  conditions: Array<{ type: string; status: string; reason: string }>;
}

async function certificateStatus(http: string, id: string): Promise<CertStatus | undefined> {
  const body = (await (await fetch(`http://${http}/issuance/status`)).json()) as {
    certificates: Array<{ namespace: string; name: string; status?: CertStatus }>;
  };
  return body.certificates.find((c) => `${c.namespace}/${c.name}` === id)?.status;
}

test("the CA Certificate's own key rotation (renew root-ca) runs the same stages; --abort is refused once the new CA signs", async () => {
  await scenario({ ackTimeout: '60s', reissueWindow: '1s', checkInterval: '200ms' }, async (server, f, oldRoot) => {
    f.gateway.setPolicy('backend-cacert', 'hold');
    await renew(server.httpAddress!, 'cert-manager/root-ca');
    const overlap = await waitForRotation(
      () => server,
      (r) => r.trigger === 'ca-key-rotation' && r.waitingCount === 1,
      'a rotation started by the CA key rotation, waiting for the gateway',
    );
    assert.equal(overlap.phase, 'Overlap');
    // Until every gateway trusts it, the new CA key pair is the rotation's, not the Secret's.
    const held = await certificateStatus(server.httpAddress!, 'cert-manager/root-ca');
    assert.ok(
      held?.conditions.some((c) => c.type === 'Issuing' && c.status === 'True' && c.reason === 'CARotation'),
      JSON.stringify(held),
    );
    const pushed = f.backend.log.filter((l) => l.name === 'backend').length;
    await renew(server.httpAddress!, 'default/backend');
    await f.backend.until(() => f.backend.log.filter((l) => l.name === 'backend').length > pushed, 30_000, 'the renewed backend leaf');
    assert.ok(signedBy(f.backend.material.cert, oldRoot), 'a leaf renewed during Overlap still comes from the old CA');
    f.gateway.setPolicy('backend-cacert', 'apply');
    const done = await waitForRotation(
      () => server,
      (r) => r.phase === 'Complete',
      'Complete',
    );
    await f.gateway.until(
      () => cas(f.gateway.material.ca) === 1 && !signedBy(f.gateway.material.cert, oldRoot) && !signedBy(f.backend.material.cert, oldRoot),
      30_000,
      'both leaves from the new CA, bundles without the old',
    );
    assert.equal(new X509Certificate(f.gateway.material.ca!).fingerprint256, done.newCA[0]!.sha256Fingerprint);
    // The CA Certificate observes its new Secret and is Ready, nothing pending.
    const start = Date.now();
    for (;;) {
      const s = await certificateStatus(server.httpAddress!, 'cert-manager/root-ca');
      if (s?.conditions.some((c) => c.type === 'Ready' && c.status === 'True') && !s.conditions.some((c) => c.type === 'Issuing')) break;
      if (Date.now() - start > 10_000) assert.fail(`root-ca not settled: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const refused = await rotateCa(server.httpAddress!, 'ca', '--abort');
    assert.equal(refused.code, 1);
    assert.match(refused.err, /^envoy-sds rotate-ca: ClusterIssuer\/ca has no rotation in progress\n$/);
    assert.deepEqual(f.loop.failures, [], 'not one failed handshake');
  });
});

test('a gateway that NACKs the overlap bundle halts the rotation and is named; --abort goes back to the old CA alone', async () => {
  await scenario({ ackTimeout: '60s', reissueWindow: '1s', checkInterval: '200ms' }, async (server, f, oldRoot) => {
    f.gateway.setPolicy('backend-cacert', 'nack');
    assert.equal((await rotateCa(server.httpAddress!, 'ClusterIssuer/ca')).code, 0);
    const halted = await waitForRotation(
      () => server,
      (r) => r.halted !== undefined,
      'the halt',
    );
    assert.equal(halted.phase, 'Overlap');
    assert.match(
      halted.halted!.message,
      /^gateway gateway-1 \(cluster gateway, replica .+\) rejected backend-cacert version \w+: rejected by test policy: backend-cacert$/,
    );
    const shown = await rotateCa(server.httpAddress!, '--status');
    assert.match(shown.out, /Overlap \(HALTED\)/);
    const metrics = await (await fetch(`http://${server.httpAddress!}/metrics`)).text();
    assert.match(metrics, /envoy_sds_ca_rotation_halted\{issuer="ClusterIssuer\/ca"\} 1/);
    // A second start while one runs is refused; --abort restores the old bundles.
    f.gateway.setPolicy('backend-cacert', 'apply');
    const aborted = await rotateCa(server.httpAddress!, 'ca', '--abort');
    assert.equal(aborted.code, 0, aborted.err);
    assert.match(aborted.out, /ClusterIssuer\/ca: Aborted/);
    await f.gateway.until(
      () => cas(f.backend.material.ca) === 1 && cas(f.gateway.material.ca) === 1,
      30_000,
      'bundles with the old CA alone',
    );
    assert.equal(new X509Certificate(f.gateway.material.ca!).fingerprint256, new X509Certificate(oldRoot).fingerprint256);
    assert.equal(new X509Certificate(f.backend.material.ca!).fingerprint256, new X509Certificate(oldRoot).fingerprint256);
    assert.ok(signedBy(f.gateway.material.cert, oldRoot) && signedBy(f.backend.material.cert, oldRoot), 'no leaf from the abandoned CA');
    assert.deepEqual(f.loop.failures, [], 'not one failed handshake');
  });
});

test('a one-step rotation (the CA replaced at once, a leaf re-issued) fails handshakes against a gateway slow to take the new bundle', async () => {
  await scenario({ onCAKeyRotation: 'Immediate', checkInterval: '200ms' }, async (server, f, oldRoot) => {
    // The same slow gateway as in the staged rotation.
    f.gateway.setPolicy('backend-cacert', 'hold');
    await renew(server.httpAddress!, 'cert-manager/root-ca');
    const start = Date.now();
    while (((await certificateStatus(server.httpAddress!, 'cert-manager/root-ca'))?.revision ?? 0) < 2) {
      if (Date.now() - start > 30_000) assert.fail('root-ca was not re-issued');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await rotation(server.httpAddress!), undefined, 'no staged rotation: the CA Secret is replaced at once');
    await renew(server.httpAddress!, 'default/backend');
    await f.backend.until(() => !signedBy(f.backend.material.cert, oldRoot), 30_000, 'the backend serving a leaf of the new CA');
    await f.gateway.until(() => f.loop.failures.length > 0, 30_000, 'a failed handshake');
    assert.match(f.loop.failures[0]!.error, /certificate|verify|issuer/i);
    process.stderr.write(
      `one-step rotation: ${f.loop.failures.length} failed handshake(s) of ${f.loop.ok + f.loop.failures.length}; the first: ${f.loop.failures[0]!.error}\n`,
    );
  });
});
