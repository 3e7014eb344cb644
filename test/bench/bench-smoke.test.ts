// Keeps the benchmark from rotting: the node peer honours the control contract that
// the Go load client relies on (bench/go/README.md), and a tiny benchmark run (20
// streams, one run per scenario and server) completes against both servers.
//
// The Go tools are built with bench/go/build.sh (the first build needs the Go module
// proxy and takes about a minute; warm, about a second). When they cannot be built the
// end-to-end run is skipped, except under CI=true, where that is a failure.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // from dist/test/bench/
const NODE_PEER = join(ROOT, 'dist', 'bench', 'node-peer.js');
const RUN = join(ROOT, 'dist', 'bench', 'run.js');

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function startNodePeer(secrets: number): Promise<{ proc: ChildProcess; addr: string; control: string }> {
  const proc = spawn(process.execPath, ['--expose-gc', NODE_PEER, '--secrets', String(secrets), '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node peer did not start: ${err}`)), 30_000);
    proc.once('exit', (code) => reject(new Error(`node peer exited (${code}): ${err}`)));
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const addr = /^LISTENING (\S+)$/m.exec(out)?.[1];
      const control = /^CONTROL (\S+)$/m.exec(out)?.[1];
      if (addr && control) {
        clearTimeout(timer);
        resolve({ proc, addr, control: `http://${control}` });
      }
    });
  });
}

test('node peer honours the control contract of bench/go/README.md', async () => {
  const peer = await startNodePeer(3);
  const envoy = new FakeEnvoy(peer.addr);
  try {
    const stats = (await (await fetch(`${peer.control}/stats?gc=1`)).json()) as Record<string, number>;
    assert.ok(stats['rssBytes']! > 0 && stats['heapInuse']! > 0, JSON.stringify(stats));
    assert.equal(stats['streams'], 0);
    assert.equal(stats['gcExposed'], 1);

    // One stream, as sds-load plays it: first response carries a leaf + intermediate
    // chain and a PKCS#8 key of about the Go peer's size.
    const s = envoy.sotw();
    s.request({ names: ['bench-1'] });
    const first = await s.response();
    assert.equal(first.secrets.length, 1);
    const chain1 = pemOf(first.secrets[0]!.tls_certificate?.certificate_chain);
    const key1 = pemOf(first.secrets[0]!.tls_certificate?.private_key);
    assert.equal(chain1.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2);
    assert.match(key1, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(Math.abs(chain1.length + key1.length - 1670) < 200, `material is ${chain1.length} + ${key1.length} B`);
    s.ack(first);

    const before = BigInt(Date.now()) * 1_000_000n;
    const res = await fetch(`${peer.control}/rotate?names=bench-1`, { method: 'POST' });
    assert.equal(res.status, 200);
    const rot = (await res.json()) as { updatedAtUnixNano: string; updateDurationNanos: number; names: number; generation: number };
    const t0 = BigInt(rot.updatedAtUnixNano);
    assert.ok(t0 >= before - 5_000_000n && t0 <= BigInt(Date.now()) * 1_000_000n + 5_000_000n, `t0 ${t0} vs ${before}`);
    assert.ok(rot.updateDurationNanos > 0);
    assert.equal(rot.names, 1);
    assert.equal(rot.generation, 1);

    // The rotation reaches the stream: new version, new content, same size.
    const second = await s.response();
    assert.notEqual(second.version_info, first.version_info);
    const chain2 = pemOf(second.secrets[0]!.tls_certificate?.certificate_chain);
    assert.notEqual(chain2, chain1);
    assert.equal(chain2.length, chain1.length);
    s.ack(second);

    const live = (await (await fetch(`${peer.control}/stats`)).json()) as Record<string, number>;
    assert.equal(live['streams'], 1);

    assert.equal((await fetch(`${peer.control}/rotate?names=all`, { method: 'POST' })).status, 200);
    assert.equal((await fetch(`${peer.control}/rotate?names=bench-3`, { method: 'POST' })).status, 404);
    assert.equal((await fetch(`${peer.control}/rotate?names=web`, { method: 'POST' })).status, 404);
    assert.equal((await fetch(`${peer.control}/rotate?names=`, { method: 'POST' })).status, 400);
    assert.equal((await fetch(`${peer.control}/rotate?names=all`)).status, 405);
  } finally {
    envoy.close();
    peer.proc.kill('SIGTERM');
  }
});

test('a smoke benchmark run completes against both servers', async (t) => {
  const build = spawnSync(join(ROOT, 'bench', 'go', 'build.sh'), { encoding: 'utf8', timeout: 300_000 });
  if (build.status !== 0) {
    const why = `bench/go/build.sh failed (${build.status ?? build.signal ?? build.error?.message}): ${(build.stderr ?? '').trim().split('\n').slice(-5).join(' | ')}`;
    if (process.env['CI'] === 'true') assert.fail(why);
    t.skip(why);
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  try {
    const run = spawnSync(process.execPath, ['--enable-source-maps', RUN, '--smoke', '--no-build', '--out', out], {
      encoding: 'utf8',
      timeout: 240_000,
      cwd: ROOT,
    });
    assert.equal(run.status, 0, `bench run failed:\n${run.stdout}\n${run.stderr}`);
    const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
      runs: Array<{ scenario: string; server: string; ok: boolean; streams: number; error?: string }>;
      issuance: Array<{ kind: string; perSecond: number }>;
    };
    const scenarios = ['fanout-1k', 'fanout-10k', 'storm-10k', 'rotate-all-10k', 'rotate-all-distinct', 'idle-memory-10k'];
    for (const sc of scenarios) {
      for (const server of ['node', 'go']) {
        const r = results.runs.find((x) => x.scenario === sc && x.server === server);
        assert.ok(r, `no ${sc} run for ${server}`);
        assert.ok(r.ok, `${sc} on ${server}: ${r.error}`);
        assert.equal(r.streams, 20);
      }
    }
    assert.deepEqual(results.runs.map((r) => r.server).slice(0, 2), ['node', 'go']);
    for (const kind of ['ecdsa-p256', 'rsa-2048']) {
      assert.ok(
        results.issuance.some((f) => f.kind === kind && f.perSecond > 0),
        `no ${kind} issuance figure`,
      );
    }
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    for (const needle of [
      '| figure | node |',
      'go-control-plane',
      'node/go',
      'cores',
      'loadavg',
      'p99 push latency',
      'RSS per idle stream',
      'leaves/s',
      'event loop longest delay',
    ]) {
      assert.ok(md.includes(needle), `latest.md lacks ${needle}`);
    }
    assert.match(run.stdout, /node\/go/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a short soak completes: no stream lost, RSS read after the first rotation and at the end', async (t) => {
  const build = spawnSync(join(ROOT, 'bench', 'go', 'build.sh'), { encoding: 'utf8', timeout: 300_000 });
  if (build.status !== 0) {
    const why = `bench/go/build.sh failed (${build.status ?? build.signal ?? build.error?.message})`;
    if (process.env['CI'] === 'true') assert.fail(why);
    t.skip(why);
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'bench-soak-'));
  try {
    // 20 streams for 5 s, a rotation every 2 s, each stream reconnecting about every 10 s.
    const run = spawnSync(
      process.execPath,
      ['--enable-source-maps', RUN, '--smoke', '--only', 'soak', '--soak-reconnect-per-minute', '6', '--no-build', '--out', out],
      { encoding: 'utf8', timeout: 120_000, cwd: ROOT },
    );
    assert.equal(run.status, 0, `soak run failed:\n${run.stdout}\n${run.stderr}`);
    const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
      runs: Array<{ scenario: string; server: string; ok: boolean; result?: { soak?: Record<string, number> } }>;
    };
    assert.deepEqual(
      results.runs.map((r) => `${r.scenario}/${r.server}`),
      ['soak/node'],
      'the soak runs on node only by default',
    );
    const soak = results.runs[0]!.result!.soak!;
    assert.equal(soak['streamsLost'], 0);
    assert.ok(soak['rotations']! >= 2, JSON.stringify(soak));
    assert.ok(soak['reconnects']! > 0, JSON.stringify(soak));
    assert.ok(soak['rssAfterFirstRotation']! > 0 && soak['rssEnd']! > 0, JSON.stringify(soak));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
