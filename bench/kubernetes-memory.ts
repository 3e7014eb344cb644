/**
 * Peak memory of the Kubernetes source at scale, against the test kube-apiserver: a cold
 * start (first list) and a re-list after an API server restart (410 Gone), with N TLS
 * Secrets and M Opaque Secrets of K KB. Creates the objects once (that takes a while),
 * then runs each given server build in turn against the same cluster, as a child process,
 * and reads its peak RSS (VmHWM, reset between the phases through /proc/PID/clear_refs).
 *
 *   node dist/bench/kubernetes-memory.js                       # 10,000 TLS + 2,000 x 100 KB Opaque
 *   node dist/bench/kubernetes-memory.js --dist /tmp/before/dist --dist dist
 *   node dist/bench/kubernetes-memory.js --tls 1000 --opaque 200   # scaled down
 *   node dist/bench/kubernetes-memory.js --node-arg=--max-old-space-size=256   # heap as in a 512Mi pod
 *
 * Not part of `npm test` or `npm run bench`: run it on a quiet machine.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startKubeCluster, type KubeCluster } from '../test/harness/kube-cluster.js';
import { KubeClient } from '../src/kubernetes/kube-client.js';
import { fromKubeconfig } from '../src/kubernetes/kube-connection.js';
import { makeCa, makeLeaf } from '../test/support/openssl-certs.js';

const { values } = parseArgs({
  options: {
    tls: { type: 'string', default: '10000' },
    opaque: { type: 'string', default: '2000' },
    'opaque-kb': { type: 'string', default: '100' },
    namespaces: { type: 'string', default: '20' },
    dist: { type: 'string', multiple: true },
    'page-size': { type: 'string' },
    /** Extra node flags for the server, e.g. --max-old-space-size=256 (a 512Mi container's heap). */
    'node-arg': { type: 'string', multiple: true },
    /** Writes a heap snapshot of each server after the cold start into this directory. */
    'heap-snapshot': { type: 'string' },
  },
});
const TLS = Number(values.tls);
const OPAQUE = Number(values.opaque);
const OPAQUE_KB = Number(values['opaque-kb']);
const NAMESPACES = Number(values.namespaces);
const DISTS = (values.dist ?? ['dist']).map((d) => resolve(d));

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function populate(client: KubeClient): Promise<void> {
  const ca = makeCa('Memory bench CA');
  const leaves = Array.from({ length: 20 }, (_, i) => makeLeaf(ca, [`host-${i}.bench.example`]));
  for (let n = 0; n < NAMESPACES; n++) {
    await client.request('POST', '/api/v1/namespaces', { body: { metadata: { name: `mem-${n}` } } });
  }
  const jobs: Array<{ ns: string; body: Record<string, unknown> }> = [];
  for (let i = 0; i < TLS; i++) {
    const leaf = leaves[i % leaves.length]!;
    jobs.push({
      ns: `mem-${i % NAMESPACES}`,
      body: {
        metadata: { name: `tls-${i}` },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(leaf.certPem), 'tls.key': b64(leaf.keyPem), 'ca.crt': b64(ca.certPem) },
      },
    });
  }
  for (let i = 0; i < OPAQUE; i++) {
    jobs.push({
      ns: `mem-${i % NAMESPACES}`,
      body: { metadata: { name: `blob-${i}` }, type: 'Opaque', data: { blob: b64(randomBytes(OPAQUE_KB * 1024)) } },
    });
  }
  let done = 0;
  const started = Date.now();
  await pool(jobs, 16, async (j) => {
    await client.request('POST', `/api/v1/namespaces/${j.ns}/secrets`, { body: j.body });
    if (++done % 2000 === 0) console.log(`  ${done}/${jobs.length} Secrets created (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  });
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.once('error', rej);
  });
}

function procStatus(pid: number): { hwmKb: number; rssKb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);
  return { hwmKb: kb('VmHWM'), rssKb: kb('VmRSS') };
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean> | boolean): Promise<void> {
  const start = Date.now();
  while (!(await fn())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Waits until the process has used no CPU for `quietMs` (it finished what it was doing). */
async function quiet(pid: number, quietMs: number): Promise<void> {
  let last = cpuTicks(pid);
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    await sleep(250);
    const now = cpuTicks(pid);
    if (now - last > 2) since = Date.now();
    last = now;
  }
}

async function metric(httpPort: number, re: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return Number(re.exec(text)?.[1] ?? 0);
}

interface Figures {
  dist: string;
  coldMs: number;
  coldPeakMb: number;
  relistPeakMb: number;
  settledRssMb: number;
}

async function measure(cluster: KubeCluster, dist: string): Promise<Figures> {
  const httpPort = await freePort();
  const cfg = join(cluster.tmpDir, `mem-config-${httpPort}.json`);
  writeFileSync(
    cfg,
    JSON.stringify({
      grpc: { tcp: { address: '127.0.0.1:0' } },
      http: { address: `127.0.0.1:${httpPort}` },
      authorization: { rules: [] },
      logLevel: 'info',
      kubernetes: {
        kubeconfig: cluster.kubeconfigPath,
        events: { enabled: false },
        deliveryStatus: { enabled: false },
        ...(values['page-size'] ? { watch: { pageSize: Number(values['page-size']) } } : {}),
      },
    }),
  );
  const snapDir = values['heap-snapshot'] ? resolve(values['heap-snapshot']) : undefined;
  const nodeArgs = [...(values['node-arg'] ?? []), ...(snapDir ? ['--heapsnapshot-signal=SIGUSR2'] : [])];
  const child = spawn(process.execPath, [...nodeArgs, join(dist, 'src', 'cli.js'), 'serve', '--config', cfg], {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(snapDir ? { cwd: snapDir } : {}),
  });
  const pid = child.pid!;
  // The server's log, for when a phase does not come (kept in the cluster's temp dir).
  const log = join(cluster.tmpDir, `server-${httpPort}.log`);
  child.stdout.on('data', (c: Buffer) => appendFileSync(log, c));
  try {
    const started = Date.now();
    await until('/readyz', 20 * 60_000, async () => {
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200;
      } catch {
        return false;
      }
    });
    const coldMs = Date.now() - started;
    await quiet(pid, 3000);
    const cold = procStatus(pid);
    if (snapDir) {
      child.kill('SIGUSR2');
      await quiet(pid, 3000);
    }
    // Re-list: the API server restarts; the watch's resourceVersion is gone (410) or the
    // new API server's watch cache is still initializing (an API error): either way the
    // informer lists again. Then wait until it is connected and done (no CPU for 5 s).
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const restartsRe = (reason: string) =>
      new RegExp(`envoy_sds_kubernetes_watch_restarts_total\\{resource="secrets",reason="${reason}"\\} (\\d+)`);
    const before = { gone: await metric(httpPort, restartsRe('gone')), error: await metric(httpPort, restartsRe('error')) };
    await cluster.stopApiServer();
    await cluster.startApiServer();
    await until(
      `the watch to restart (server log: ${log})`,
      5 * 60_000,
      async () =>
        (await metric(httpPort, restartsRe('gone')).catch(() => 0)) > before.gone ||
        (await metric(httpPort, restartsRe('error')).catch(() => 0)) > before.error,
    );
    await until(
      'reachable again',
      5 * 60_000,
      async () => (await metric(httpPort, /envoy_sds_kubernetes_api_reachable (\d+)/).catch(() => 0)) === 1,
    );
    await quiet(pid, 5000);
    const relists = {
      gone: (await metric(httpPort, restartsRe('gone'))) - before.gone,
      error: (await metric(httpPort, restartsRe('error'))) - before.error,
    };
    console.log(`  watch restarts after the API server restart: ${JSON.stringify(relists)}`);
    const relist = procStatus(pid);
    return { dist, coldMs, coldPeakMb: cold.hwmKb / 1024, relistPeakMb: relist.hwmKb / 1024, settledRssMb: relist.rssKb / 1024 };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

async function main(): Promise<void> {
  console.log(`Kubernetes list memory: ${TLS} TLS Secrets, ${OPAQUE} Opaque Secrets of ${OPAQUE_KB} KB, in ${NAMESPACES} namespaces`);
  const cluster = await startKubeCluster({ startTimeoutMs: 180_000 });
  const admin = new KubeClient(fromKubeconfig(cluster.kubeconfigPath, undefined, 'bench'), { requestTimeoutMs: 60_000 });
  try {
    await populate(admin);
    const rows: Figures[] = [];
    for (const dist of DISTS) {
      console.log(`measuring ${dist}`);
      const f = await measure(cluster, dist);
      console.log(`  ${JSON.stringify(f)}`);
      rows.push(f);
    }
    console.log('\n| server build | cold start to ready | peak RSS, cold start | peak RSS, re-list after 410 | RSS after |');
    console.log('|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.dist} | ${(r.coldMs / 1000).toFixed(1)} s | ${r.coldPeakMb.toFixed(0)} MB | ${r.relistPeakMb.toFixed(0)} MB | ${r.settledRssMb.toFixed(0)} MB |`,
      );
    }
  } finally {
    admin.close();
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
