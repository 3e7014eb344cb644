// Secret files under a low descriptor limit (`ulimit -n 256` for the server process):
// many declared secrets load without EMFILE (reads are throttled), and a rotation made
// while descriptors are exhausted is read later, never lost. (Observed on 9495a98: a
// config with 100,000 secrets failed 80,019 loads with EMFILE, again every 30 s.)
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeFixtures, type Fixtures } from '../support/test-server.js';
import { RssWatch, report, servedWithin, waitFor, writePair } from './support/attack-kit.js';
import { spawnServer, type SpawnedServer } from './support/spawned-server.js';

/** Scaled down from the observed 100,000 to keep the suite fast; HOSTILE_SECRETS=100000 for the full run. */
const SECRETS = Number(process.env['HOSTILE_SECRETS'] ?? 10_000);
const FD_LIMIT = 256;

let fx: Fixtures;
const dirs: string[] = [];
const servers: SpawnedServer[] = [];
const sockets: Socket[] = [];

before(() => {
  fx = makeFixtures();
});
after(() => {
  for (const c of sockets) c.destroy();
  for (const s of servers) s.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sds-hostile-fds-'));
  dirs.push(d);
  return d;
}

const emfileLines = (s: SpawnedServer) => s.logs().filter((l) => l['code'] === 'EMFILE' || l['code'] === 'ENFILE').length;

describe('descriptors', () => {
  test(`${SECRETS.toLocaleString('en')} declared secrets load under a ${FD_LIMIT}-descriptor limit with no EMFILE`, async (t) => {
    const dir = tempDir();
    const web = writePair(dir, 'web', fx.web1);
    // Every secret names the same two files: what is measured is descriptors, not disk.
    const secrets = [web, ...Array.from({ length: SECRETS - 1 }, (_, i) => ({ name: `s${i}`, tlsCertificate: web.tlsCertificate }))];
    const started = performance.now();
    const s = await spawnServer({
      dir,
      fdLimit: FD_LIMIT,
      startTimeoutMs: 180_000,
      config: { secrets, authorization: { rules: [{ identities: ['loopback'], names: ['*'] }] } },
    });
    servers.push(s);
    const rss = new RssWatch(s);
    let ready = false;
    try {
      await waitFor(async () => (await s.get('/readyz')).status === 200, 60_000, 'every secret loaded (/readyz)');
      ready = true;
    } finally {
      report(t, {
        attack: `secrets-${SECRETS}-fd-${FD_LIMIT}`,
        ready,
        msToReady: performance.now() - started,
        emfileLines: emfileLines(s),
        failedLoadLines: s.logs().filter((l) => l['msg'] === 'cannot read secret file; the last good version stays').length,
        rssMb: rss.stop().peakMb,
        logBytes: s.logSize,
      });
    }
    assert.equal(emfileLines(s), 0, 'no read failed with EMFILE');
    const metrics = (await s.get('/metrics')).body;
    assert.match(metrics, new RegExp(`^envoy_sds_secrets ${SECRETS}$`, 'm'));
    t.diagnostic(`well-behaved client served in ${(await servedWithin(s.grpc, `s${SECRETS - 2}`, 5000)).toFixed(0)} ms`);
  });

  test('a rotation made while the process is out of descriptors is read once they are back (EMFILE retried, never lost)', async (t) => {
    const dir = tempDir();
    const web = writePair(dir, 'web', fx.web1);
    const s = await spawnServer({
      dir,
      fdLimit: FD_LIMIT,
      config: { secrets: [web], authorization: { rules: [{ identities: ['loopback'], names: ['*'] }] } },
    });
    servers.push(s);
    await servedWithin(s.grpc, 'web', 5000, fx.web1.certPem);
    const [host, port] = [s.grpc.slice(0, s.grpc.lastIndexOf(':')), Number(s.grpc.slice(s.grpc.lastIndexOf(':') + 1))];
    // Idle TCP connections until the server holds every descriptor it may open (spread
    // over loopback addresses, in case connections are limited per peer).
    for (let i = 0; i < FD_LIMIT + 64; i++) {
      const c = connect({ host, port, localAddress: `127.0.${Math.floor(i / 200)}.${(i % 200) + 2}` });
      c.on('error', () => undefined);
      sockets.push(c);
    }
    await new Promise((r) => setTimeout(r, 500));
    const cert = web.tlsCertificate.certificateChainFile;
    const key = web.tlsCertificate.privateKeyFile;
    writeFileSync(`${cert}.new`, fx.web2.certPem);
    writeFileSync(`${key}.new`, fx.web2.keyPem);
    renameSync(`${cert}.new`, cert);
    renameSync(`${key}.new`, key);
    // Long enough for the read to give up once (5 s deadline) and be scheduled again.
    await new Promise((r) => setTimeout(r, 6000));
    const fdsInUse = readdirSync(`/proc/${s.pid}/fd`).length;
    const transientLogged = s.logs().some((l) => l['secret'] === 'web' && typeof l['retryInMs'] === 'number');
    for (const c of sockets.splice(0)) c.destroy();
    const started = performance.now();
    let servedMs = -1;
    try {
      await servedWithin(s.grpc, 'web', 20_000, fx.web2.certPem);
      servedMs = performance.now() - started;
    } finally {
      report(t, { attack: 'rotation-during-emfile', alive: s.alive(), fdsInUse, transientLogged, rotationServedMsAfterRelease: servedMs });
    }
    assert.ok(s.alive());
  });
});
