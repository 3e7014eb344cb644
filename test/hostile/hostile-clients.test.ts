// Permitted but hostile clients, against the real server process: NACKs with 3.9 MB
// error_detail, thousands of denied names, thousands of 1,000-character names, more
// distinct names than an identity may hold, a delta stream at its limit. Each: the
// process lives, a well-behaved client (another identity) is served, memory and log
// growth stay under stated bounds, and the attacker is sent nothing it may not read.
// (Observed on 9495a98: +300 MB, 204 MB of log and a 204 MB /status for the NACKs;
// 39,000 lines (48 MB) in 5 s for the denials; 394 MB for the long names; a delta
// stream at 5,000 names killed when it swapped one.)
//
// Memory is judged twice: the peak growth of a first wave (which includes garbage from
// decoding the attack's requests: the collector takes it back, the OS rarely sees it
// returned) and the growth a second, identical wave adds (what the server keeps per
// attack: near zero when nothing is kept).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeEnvoy, type SotwStream } from '../support/fake-envoy.js';
import { makeFixtures, type Fixtures } from '../support/test-server.js';
import { ATTACKER_POLICY, RssWatch, logSettled, metricValue, reached, report, servedWithin, writePair } from './support/attack-kit.js';
import { spawnServer, type SpawnedServer } from './support/spawned-server.js';

/** What a second wave of the same attack may add (a leak check: nothing is kept per attack; the peak is noisy). */
const REPEAT_RSS_MB = 80;

let fx: Fixtures;
const dirs: string[] = [];
const servers: SpawnedServer[] = [];
const clients: FakeEnvoy[] = [];

before(() => {
  fx = makeFixtures();
});
after(() => {
  for (const c of clients) c.close();
  for (const s of servers) s.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A server with `web` and `web2`; the attacker (Unix socket) may read only `web`, loopback reads all. */
async function serve(limits: Record<string, number> = {}): Promise<SpawnedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sds-hostile-clients-'));
  dirs.push(dir);
  const s = await spawnServer({
    dir,
    config: { secrets: [writePair(dir, 'web', fx.web1), writePair(dir, 'web2', fx.web2)], authorization: ATTACKER_POLICY, limits },
  });
  servers.push(s);
  return s;
}

/** The attacker: its own connection over the Unix socket (identity `unix`). */
function attacker(s: SpawnedServer): FakeEnvoy {
  const e = new FakeEnvoy(`unix:${s.unix}`, {
    node: { id: 'attacker', cluster: 'x' },
    channelOptions: { 'grpc.max_send_message_length': -1 },
  });
  clients.push(e);
  return e;
}

const metrics = async (s: SpawnedServer) => (await s.get('/metrics')).body;
const metric = async (s: SpawnedServer, name: string, labels = '') => metricValue(await metrics(s), name, labels);
const names = (n: number, length: number, prefix = 'n') => Array.from({ length: n }, (_, i) => `${prefix}${i}-`.padEnd(length, 'x'));

/** Runs `wave` twice on fresh streams; returns the first wave's peak growth and what the second added. */
async function twoWaves(s: SpawnedServer, wave: (n: number) => Promise<void>): Promise<{ firstMb: number; repeatMb: number }> {
  const rss = new RssWatch(s);
  await wave(0);
  const first = rss.stop();
  const second = new RssWatch(s);
  await wave(1);
  const repeat = second.stop();
  return { firstMb: first.growthMb, repeatMb: repeat.peakMb - first.peakMb };
}

/** Ends an attack wave's streams and waits until the server closed them. */
async function closeAll(s: SpawnedServer, streams: SotwStream[]): Promise<void> {
  for (const st of streams) st.cancel();
  await reached(async () => (await metric(s, 'envoy_sds_streams_open')) === 0, 10_000);
}

describe('hostile clients', () => {
  test('NACKs with a 3.9 MB error_detail on 50 streams: detail cut to ~1 KB before it is kept, logged or shown', async (t) => {
    const s = await serve();
    const envoy = attacker(s);
    const detail = 'Failed to load private key: '.padEnd(3.9 * 1_000_000, 'A');
    const log0 = s.logSize;
    let status = '';
    let nacked = false;
    const started = performance.now();
    const mem = await twoWaves(s, async (wave) => {
      const streams = Array.from({ length: 50 }, () => envoy.sotw());
      for (const st of streams) st.request({ names: ['web'] });
      const responses = await Promise.all(streams.map((st) => st.response(20_000)));
      streams.forEach((st, i) => st.nack(responses[i]!, detail));
      nacked = await reached(async () => !s.alive() || (await metric(s, 'envoy_sds_nacks_total')) >= 50 * (wave + 1), 60_000);
      if (wave === 0) {
        await logSettled(s);
        status = (await s.get('/status')).body;
        for (const st of streams) await st.nothing(0); // nothing pushed back for a NACK
      }
      await closeAll(s, streams);
    });
    const ms = performance.now() - started;
    await logSettled(s);
    const logBytes = s.logSize - log0;
    report(t, {
      attack: 'nack-flood-2x50x3.9MB',
      alive: s.alive(),
      nacked,
      peakGrowthMb: mem.firstMb,
      repeatGrowthMb: mem.repeatMb,
      logBytes,
      statusBytes: status.length,
      ms,
    });
    assert.ok(s.alive());
    assert.ok(logBytes < 256 * 1024, `log grew ${logBytes} bytes`);
    assert.ok(status.length < 256 * 1024, `/status is ${status.length} bytes`);
    // Still recorded, just bounded: the operator sees what the client said.
    assert.match(status, /Failed to load private key: A{100}/);
    // Our transport keeps no request after decoding it (grpc-js kept each stream's last
    // 3.9 MB): measured about 104 MB of peak growth while 195 MB of requests pass through,
    // and nothing added by a second wave. Measured 96-162 MB across runs (the collector's
    // timing); 200 MB still tells it from the 300 MB grpc-js kept. The second wave is the leak check.
    assert.ok(mem.firstMb < 200, `RSS grew ${mem.firstMb.toFixed(0)} MB`);
    assert.ok(mem.repeatMb < REPEAT_RSS_MB, `a second wave added ${mem.repeatMb.toFixed(0)} MB`);
    t.diagnostic(`well-behaved client served in ${(await servedWithin(s.grpc, 'web2', 5000)).toFixed(0)} ms`);
  });

  test('10 requests naming 3,900 denied names: one log line per request at most, counted in the metric', async (t) => {
    const s = await serve();
    const envoy = attacker(s);
    const denied = names(3900, 500, 'denied');
    const log0 = s.logSize;
    const lines0 = s.logLineCount;
    const started = performance.now();
    const mem = await twoWaves(s, async (wave) => {
      const streams = Array.from({ length: 10 }, () => envoy.sotw());
      for (const st of streams) st.request({ names: denied });
      await reached(async () => !s.alive() || (await metric(s, 'envoy_sds_denied_total')) >= 39_000 * (wave + 1), 60_000);
      for (const st of streams) await st.nothing(0); // a denied name is never sent
      await closeAll(s, streams);
    });
    const ms = performance.now() - started;
    await logSettled(s);
    const logBytes = s.logSize - log0;
    const logLines = s.logLineCount - lines0;
    report(t, {
      attack: 'denied-2x10x3900',
      alive: s.alive(),
      logLines,
      logBytes,
      peakGrowthMb: mem.firstMb,
      repeatGrowthMb: mem.repeatMb,
      ms,
    });
    assert.ok(s.alive());
    assert.ok(logLines <= 25, `${logLines} log lines for 20 requests`);
    assert.ok(logBytes < 64 * 1024, `log grew ${logBytes} bytes`);
    const denial = s.logs().find((l) => l['msg'] === 'secret name denied to caller' && l['denied'] === 3900);
    assert.ok(denial, 'a denial line counts the names of its request');
    assert.equal(denial['identity'], 'unix:unix');
    assert.equal(await metric(s, 'envoy_sds_denied_total'), 78_000);
    // 20 MB of names pass through per wave: measured 57-62 MB of peak growth on an idle
    // machine and 96-114 MB at load 10-14 (the collector runs later); the second wave is the leak check.
    assert.ok(mem.firstMb < 150, `RSS grew ${mem.firstMb.toFixed(0)} MB`);
    assert.ok(mem.repeatMb < REPEAT_RSS_MB, `a second wave added ${mem.repeatMb.toFixed(0)} MB`);
    t.diagnostic(`well-behaved client served in ${(await servedWithin(s.grpc, 'web2', 5000)).toFixed(0)} ms`);
  });

  test('40 streams of 3,900 names of 1,000 characters: refused (INVALID_ARGUMENT, name_too_long), nothing kept', async (t) => {
    const s = await serve();
    const envoy = attacker(s);
    const codes = new Set<number | string>();
    const started = performance.now();
    const mem = await twoWaves(s, async (wave) => {
      const streams = Array.from({ length: 40 }, () => envoy.sotw());
      streams.forEach((st, i) => st.request({ names: names(3900, 1000, `w${wave}s${i}-`) }));
      for (const c of await Promise.all(
        streams.map((st) =>
          st.closedWith(20_000).then(
            (e) => e.code,
            () => 'open',
          ),
        ),
      ))
        codes.add(c);
      await closeAll(s, streams);
    });
    const ms = performance.now() - started;
    const refused = await metric(s, 'envoy_sds_bad_requests_total', 'reason="name_too_long"');
    report(t, {
      attack: 'long-names-2x40x3900x1000',
      alive: s.alive(),
      peakGrowthMb: mem.firstMb,
      repeatGrowthMb: mem.repeatMb,
      refusedStreams: refused,
      ms,
    });
    assert.ok(s.alive());
    assert.deepEqual([...codes], [grpc.status.INVALID_ARGUMENT]);
    assert.equal(refused, 80);
    // Decoding 40 requests of 3.9 MB makes garbage before any check can run (the decoder
    // is the transport's); what matters is that nothing stays.
    assert.ok(mem.firstMb < 250, `RSS grew ${mem.firstMb.toFixed(0)} MB`);
    assert.ok(mem.repeatMb < REPEAT_RSS_MB, `a second wave added ${mem.repeatMb.toFixed(0)} MB`);
    t.diagnostic(`well-behaved client served in ${(await servedWithin(s.grpc, 'web2', 5000)).toFixed(0)} ms`);
  });

  test('40 streams of 3,900 distinct 500-character names: the identity is capped at 20,000 distinct names (RESOURCE_EXHAUSTED)', async (t) => {
    const s = await serve();
    const envoy = attacker(s);
    const open: number[] = [];
    let refusal: grpc.ServiceError | undefined;
    const started = performance.now();
    const mem = await twoWaves(s, async (wave) => {
      const streams = Array.from({ length: 40 }, () => envoy.sotw());
      streams.forEach((st, i) => st.request({ names: names(3900, 500, `w${wave}s${i}-`) }));
      await reached(
        async () =>
          !s.alive() || (await metric(s, 'envoy_sds_bad_requests_total', 'reason="too_many_names_for_identity"')) >= 35 * (wave + 1),
        30_000,
      );
      open.push(streams.filter((st) => !st.ended).length);
      refusal ??= await streams.find((st) => st.ended)?.closedWith(1000);
      await closeAll(s, streams);
    });
    const ms = performance.now() - started;
    report(t, {
      attack: 'distinct-names-2x40x3900x500',
      alive: s.alive(),
      peakGrowthMb: mem.firstMb,
      repeatGrowthMb: mem.repeatMb,
      openStreams: open.join('+'),
      ms,
    });
    assert.ok(s.alive());
    assert.deepEqual(open, [5, 5], '5 x 3,900 = 19,500 names fit; a sixth stream would pass 20,000');
    assert.equal(refusal?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(refusal?.details ?? '', /at most 20000 distinct names/);
    assert.ok(mem.firstMb < 250, `RSS grew ${mem.firstMb.toFixed(0)} MB`);
    assert.ok(mem.repeatMb < REPEAT_RSS_MB, `a second wave added ${mem.repeatMb.toFixed(0)} MB`);
    // Another identity is not affected by this one's budget.
    t.diagnostic(`well-behaved client served in ${(await servedWithin(s.grpc, 'web2', 5000)).toFixed(0)} ms`);
  });

  test('a delta stream at the 5,000-name limit may swap a name and re-subscribe one it holds', async (t) => {
    const s = await serve();
    const envoy = new FakeEnvoy(s.grpc, { node: { id: 'big-gateway', cluster: 'gateway' } });
    clients.push(envoy);
    const d = envoy.delta();
    d.request({ subscribe: ['web', ...names(4999, 20, 'missing')] });
    const first = await d.response(20_000);
    assert.deepEqual(
      first.resources.map((r) => r.name),
      ['web'],
    );
    d.ack(first);
    // Swap: one name out, one in, in the same request (the subscription stays at 5,000).
    d.request({ subscribe: ['web2'], unsubscribe: ['missing0-'.padEnd(20, 'x')] });
    let swapped = 'no response';
    let resent = 'no response';
    try {
      const r = await d.response(10_000);
      swapped = r.resources.map((x) => x.name).join(',');
      d.ack(r);
      // Re-subscribing a name it holds means "send it again".
      d.request({ subscribe: ['web'] });
      const again = await d.response(10_000);
      resent = again.resources.map((x) => x.name).join(',');
    } catch (err) {
      swapped = swapped === 'no response' ? `ended: ${(err as Error).message}` : swapped;
    }
    report(t, { attack: 'delta-at-limit-swap', alive: s.alive(), swapped, resent, streamOpen: !d.ended });
    assert.equal(swapped, 'web2');
    assert.equal(resent, 'web');
    assert.ok(!d.ended, 'the stream stays open');
    // One more distinct name would pass the limit: refused as before.
    d.request({ subscribe: ['one-too-many'] });
    assert.equal((await d.closedWith(10_000)).code, grpc.status.RESOURCE_EXHAUSTED);
  });
});
