/**
 * Our server in bench mode, the counterpart of bench/go/peer (sds-peer): the real
 * server (startServer, all of main.ts's wiring) on a TCP address, holding N secrets
 * bench-0 .. bench-(N-1) of the Go peer's shape, plus the control HTTP endpoint that
 * bench/go/load (sds-load) drives (contract: bench/go/README.md):
 *
 *   POST /rotate?names=all|bench-3[,bench-4...]
 *     -> {"updatedAtUnixNano": "<epoch ns>", "updateDurationNanos", "names", "generation"}
 *   GET  /stats[?gc=1]
 *     -> {"rssBytes", "heapInuse", "streams", "eventLoopDelayMaxMs", ...}
 *
 * With --materials FILE (bench/distinct-materials.ts) every secret has its own
 * certificate: bench-i serves sets[generation % sets.length][i], the same file the Go
 * peer reads; updates then go through SecretStore.offer() (the validation pool), as
 * the sources do. eventLoopDelayMaxMs is the event loop's longest delay since the
 * first rotation (perf_hooks.monitorEventLoopDelay); loopStallCpuMaxMs the same in
 * this thread's CPU time, which other processes on the machine do not inflate
 * (./loop-stall-monitor.ts); gcPauseMaxMs the longest GC pause since then.
 *
 * Prints `LISTENING <addr>` and `CONTROL <addr>` on stdout; logs (the server's own,
 * at --log-level, default info as in production) go to stderr.
 *
 *   node --expose-gc dist/bench/node-peer.js [--secrets 10000] [--addr 127.0.0.1:0]
 *        [--control 127.0.0.1:0] [--log-level info] [--materials FILE] [--validation-workers N]
 *        [--transport http2|grpc-js] [--memory-log-seconds S]
 *
 * Run with --expose-gc so that GET /stats?gc=1 can run a full GC first, as the Go
 * peer runs runtime.GC().
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseConfig } from '../src/config/server-config.js';
import { startServer, type RunningServer } from '../src/main.js';
import { createLogger } from '../src/observability/logger.js';
import type { TlsCertificateMaterial } from '../src/store/secret-material.js';
import type { PutResult } from '../src/store/secret-store.js';
import { readDistinctMaterialBytes, type MaterialBytes } from './distinct-materials.js';
import { LoopStallMonitor } from './loop-stall-monitor.js';
import { newMaterialSets, type Material } from './materials.js';

interface PeerOptions {
  secrets: number;
  addr: string;
  control: string;
  logLevel: string;
  materials?: string;
  validationWorkers?: number;
  /** Our HTTP/2 transport, or the grpc-js server for comparison. */
  transport: 'http2' | 'grpc-js';
  /** Every this many seconds a `MEMORY {...}` line on stderr (0: none). */
  memoryLogSeconds: number;
  /** Sample what is allocated from the first rotation on and outlives a young-generation GC; written here on GET /stats. */
  heapSample?: string;
  /** With --heap-sample: every allocation sampled, also those a young-generation GC collects. */
  heapSampleAll: boolean;
}

function options(): PeerOptions {
  const { values } = parseArgs({
    options: {
      secrets: { type: 'string', default: '10000' },
      addr: { type: 'string', default: '127.0.0.1:0' },
      control: { type: 'string', default: '127.0.0.1:0' },
      'log-level': { type: 'string', default: 'info' },
      materials: { type: 'string' },
      'validation-workers': { type: 'string' },
      transport: { type: 'string', default: 'http2' },
      'memory-log-seconds': { type: 'string', default: '0' },
      'heap-sample': { type: 'string' },
      'heap-sample-all': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const secrets = Number(values.secrets);
  if (!Number.isInteger(secrets) || secrets < 1) throw new Error('--secrets must be an integer >= 1');
  const workers = values['validation-workers'];
  const transport = values.transport;
  if (transport !== 'http2' && transport !== 'grpc-js') throw new Error('--transport must be http2 or grpc-js');
  return {
    secrets,
    addr: values.addr,
    control: values.control,
    logLevel: values['log-level'],
    transport,
    memoryLogSeconds: Number(values['memory-log-seconds']),
    ...(values['heap-sample'] ? { heapSample: values['heap-sample'] } : {}),
    heapSampleAll: values['heap-sample-all'],
    ...(values.materials ? { materials: values.materials } : {}),
    ...(workers !== undefined ? { validationWorkers: Number(workers) } : {}),
  };
}

/**
 * Wall-clock epoch nanoseconds with sub-millisecond resolution (Date.now() has
 * only milliseconds): a millisecond edge of the wall clock paired with the
 * monotonic clock, once. The load client compares it with Go's time.Now().
 */
function wallClockNs(): () => bigint {
  const start = Date.now();
  let ms = start;
  let hr = process.hrtime.bigint();
  while (ms === start) {
    ms = Date.now();
    hr = process.hrtime.bigint();
  }
  const base = BigInt(ms) * 1_000_000n - hr;
  return () => base + process.hrtime.bigint();
}

class Peer {
  private generation = 0;
  private readonly nowNs = wallClockNs();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private readonly loopStall = new LoopStallMonitor();
  private loopDelayReset = false;
  /** The longest delay (ns) measured before a GC the load client asked for. */
  private loopDelayKept = 0;
  private lastSettledMs = 0;

  constructor(
    private readonly server: RunningServer,
    private readonly names: readonly string[],
    private readonly sets: readonly Material[],
    /** --materials: per generation, one material per secret. */
    private readonly distinct?: readonly MaterialBytes[],
    private readonly heapSample?: string,
    private readonly heapSampleAll = false,
  ) {
    this.loopDelay.enable();
    this.loopStall.start();
  }

  /** Secret i's material in --materials mode: new strings from the bytes, as the file source makes them. */
  private distinctMaterial(generation: number, i: number): TlsCertificateMaterial {
    const set = this.distinct![generation % this.distinct!.length]!;
    return { kind: 'tls_certificate', certificateChain: set.chain(i), privateKey: set.key(i) };
  }

  /** --materials mode: every secret offered (validated by the pool), all settled. */
  async loadDistinct(): Promise<void> {
    const results = await Promise.all(await this.offerAll(this.names, (i) => this.distinctMaterial(0, i)));
    const bad = results.find((r) => r.outcome === 'rejected');
    if (bad?.outcome === 'rejected') throw new Error(`store refused a secret: ${bad.code} ${bad.error.message}`);
  }

  /**
   * Offers in slices, yielding between them, as a watch-fed source would (events
   * arrive over many ticks): one synchronous loop of 10,000 offers would itself stall
   * the event loop and hide what the store does. Resolves once all are offered.
   */
  private async offerAll(names: readonly string[], material: (i: number) => TlsCertificateMaterial): Promise<Array<Promise<PutResult>>> {
    const all: Array<Promise<PutResult>> = [];
    for (let i = 0; i < names.length; i++) {
      if (i > 0 && i % 256 === 0) await new Promise((r) => setImmediate(r));
      all.push(this.server.store.offer(names[i]!, material(i), { source: 'test', ref: names[i]! }));
    }
    return all;
  }

  material(generation: number): TlsCertificateMaterial {
    const m = this.sets[generation % this.sets.length]!;
    // A new object per secret, as the Go peer builds a new Secret per name.
    return { kind: 'tls_certificate', certificateChain: m.chainPem, privateKey: m.keyPem };
  }

  load(): void {
    for (const name of this.names) this.put(name, this.material(0));
  }

  private put(name: string, material: TlsCertificateMaterial): void {
    const r = this.server.store.put(name, material, { source: 'test', ref: name });
    if (r.outcome === 'rejected') throw new Error(`store refused ${name}: ${r.code} ${r.error.message}`);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://control');
    try {
      if (url.pathname === '/rotate') return this.rotate(req, url, res);
      if (url.pathname === '/stats') return this.stats(url, res);
      text(res, 404, 'not found');
    } catch (err) {
      text(res, 500, err instanceof Error ? err.message : String(err));
    }
  }

  private rotate(req: IncomingMessage, url: URL, res: ServerResponse): void {
    if (!this.loopDelayReset) {
      // The longest delay from the first rotation on (loading and the connect storm excluded).
      this.loopDelay.reset();
      this.loopDelayKept = 0;
      this.loopStall.reset();
      this.loopDelayReset = true;
      if (this.heapSample) startHeapSampling(this.heapSampleAll);
    }
    if (req.method !== 'POST') return text(res, 405, 'POST only');
    const arg = url.searchParams.get('names') ?? '';
    if (arg === '') return text(res, 400, 'names=all or names=bench-0[,bench-1...] required');
    let names: readonly string[];
    if (arg === 'all') names = this.names;
    else {
      const list: string[] = [];
      for (const n of arg.split(',')) {
        const m = /^bench-(0|[1-9]\d*)$/.exec(n);
        if (!m || Number(m[1]) >= this.names.length) return text(res, 404, `unknown secret ${JSON.stringify(n)}`);
        list.push(n);
      }
      names = list;
    }
    const gen = this.generation + 1;
    if (this.distinct) {
      this.rotateDistinct(names, gen, res);
      return;
    }
    // Build the new materials first: t0 covers only the store updates (and the pushes
    // they trigger), as for a store fed by a watcher.
    const materials = names.map(() => this.material(gen));
    const startNs = this.nowNs();
    const h0 = process.hrtime.bigint();
    for (let i = 0; i < names.length; i++) this.put(names[i]!, materials[i]!);
    const h1 = process.hrtime.bigint();
    this.generation = gen;
    json(res, {
      updatedAtUnixNano: startNs.toString(),
      updateDurationNanos: Number(h1 - h0),
      names: names.length,
      generation: gen,
    });
  }

  /** Answers once every offer is made (validation goes on in the pool); /stats says when all settled. */
  private rotateDistinct(names: readonly string[], gen: number, res: ServerResponse): void {
    const index = names.map((n) => Number(n.slice('bench-'.length)));
    const startNs = this.nowNs();
    const h0 = process.hrtime.bigint();
    this.generation = gen;
    void this.offerAll(names, (i) => this.distinctMaterial(gen, index[i]!))
      .then((offers) => {
        const offered = process.hrtime.bigint();
        json(res, {
          updatedAtUnixNano: startNs.toString(),
          updateDurationNanos: Number(offered - h0),
          names: names.length,
          generation: gen,
        });
        return Promise.all(offers);
      })
      .then((results) => {
        this.lastSettledMs = Number(process.hrtime.bigint() - h0) / 1e6;
        const bad = results.find((r) => r.outcome === 'rejected');
        if (bad?.outcome === 'rejected') process.stderr.write(`store refused a secret: ${bad.code} ${bad.error.message}\n`);
      });
  }

  private stats(url: URL, res: ServerResponse): void {
    if (url.searchParams.get('gc') === '1') {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc) {
        // The load client's GC is not the server's stall: keep the longest delay from
        // before it, and measure again once its late tick has been recorded.
        this.loopDelayKept = Math.max(this.loopDelayKept, this.loopDelay.max);
        this.loopStall.forcedGc(gc);
        setTimeout(() => this.loopDelay.reset(), 50).unref();
      }
    }
    const m = process.memoryUsage();
    if (this.heapSample) stopHeapSampling(this.heapSample);
    const stalls = this.loopStall.longestStalls();
    if (stalls.length > 0) process.stderr.write(`STALLS ${JSON.stringify(stalls)}\n`);
    const lazy = lazyFreeBytes();
    json(res, {
      rssBytes: m.rss,
      ...(lazy !== undefined ? { lazyFreeBytes: lazy } : {}),
      heapInuse: m.heapUsed,
      // Node extras (Go has no equivalent): V8 heap reserved, memory held by
      // Buffers/ArrayBuffers outside the V8 heap.
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      streams: this.server.registry.size,
      eventLoopDelayMaxMs: Math.max(this.loopDelayKept, this.loopDelay.max) / 1e6,
      eventLoopDelayP99Ms: this.loopDelay.percentile(99) / 1e6,
      loopStallCpuMaxMs: this.loopStall.maxStallCpuMs,
      gcPauseMaxMs: this.loopStall.maxGcPauseMs,
      gcMajorPauseMaxMs: this.loopStall.maxMajorGcPauseMs,
      gcPauses: this.loopStall.gcPauseCount,
      pendingOffers: this.server.store.pendingOffers,
      lastRotationSettledMs: this.lastSettledMs,
      gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function' ? 1 : 0,
    });
  }
}

function json(res: ServerResponse, body: unknown): void {
  const s = `${JSON.stringify(body)}\n`;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(`${body}\n`);
}

async function main(): Promise<void> {
  const o = options();
  const sets = await newMaterialSets(2);
  const config = parseConfig(
    {
      grpc: { tcp: { address: o.addr } },
      http: null,
      authorization: { rules: [{ identities: ['loopback'], names: ['*'] }] },
      trustLoopback: true, // the load client is on loopback, also when the bench runs in a pod
      logLevel: o.logLevel,
      drainSeconds: 1,
      ...(o.validationWorkers !== undefined ? { validation: { workers: o.validationWorkers } } : {}),
    },
    process.cwd(),
  );
  // Production logs to stdout through pino's own destination; here stdout carries the
  // LISTENING/CONTROL lines, so the same destination writes to stderr instead.
  const logger = createLogger({
    level: o.logLevel,
    destination: pino.destination({ dest: 2, sync: true }) as unknown as NodeJS.WritableStream,
  });
  const names = Array.from({ length: o.secrets }, (_, i) => `bench-${i}`);
  const distinct = o.materials ? readDistinctMaterialBytes(o.materials) : undefined;
  if (distinct && distinct.some((set) => set.length < names.length)) {
    throw new Error(`--materials ${o.materials} holds fewer than ${names.length} secrets per set`);
  }
  // Reading the materials file (70 MB of JSON) leaves garbage no production server has;
  // left in the heap, it made the first rotation's full GC the longest pause of a run.
  if (distinct) (globalThis as { gc?: () => void }).gc?.();
  const server = await startServer(config, { logger, transport: o.transport });
  const peer = new Peer(server, names, sets, distinct, o.heapSample, o.heapSampleAll);
  if (distinct) await peer.loadDistinct();
  else peer.load();

  const control = createServer((req, res) => peer.handle(req, res));
  const [host, port] = splitHostPort(o.control);
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(port, host, () => resolve());
  });
  const ca = control.address() as AddressInfo;
  process.stdout.write(`LISTENING ${server.grpcAddress ?? ''}\nCONTROL ${ca.address}:${ca.port}\n`);
  process.stderr.write(
    `sds-node-peer: ${names.length} secrets, chain ${sets[0]!.chainPem.length} B + key ${sets[0]!.keyPem.length} B PEM, ` +
      `pid ${process.pid}, gc ${typeof (globalThis as { gc?: unknown }).gc === 'function' ? 'exposed' : 'not exposed'}\n`,
  );

  if (o.memoryLogSeconds > 0) logMemory(o.memoryLogSeconds, server);

  // Exit at once on a signal (the load client is gone by then; draining 10k streams
  // measures nothing). process.exit() still writes a --cpu-prof profile.
  const quit = (): never => process.exit(0);
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}

/**
 * V8's sampling heap profiler, keeping samples of objects a full GC collects but
 * dropping those a young-generation GC does: what is left is what got promoted to the
 * old generation (and what is still alive), the work of every full GC. With
 * --heap-sample-all, every allocation.
 */
const inspector = new Session();
function startHeapSampling(all: boolean): void {
  inspector.connect();
  inspector.post('HeapProfiler.startSampling', {
    samplingInterval: 16384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: all,
  });
}

function stopHeapSampling(file: string): void {
  inspector.post('HeapProfiler.stopSampling', (err, r) => {
    if (err) process.stderr.write(`heap sampling: ${err.message}\n`);
    else writeFileSync(file, JSON.stringify(r.profile));
  });
}

/**
 * Where the memory sits, over time (for the soak): V8 heap used and reserved, per
 * space, memory outside the heap (Buffers), and the rest of RSS (native: HTTP/2 and
 * OpenSSL state, the allocator's free lists, worker threads' heaps).
 */
function logMemory(seconds: number, server: RunningServer): void {
  const t0 = performance.now();
  const mb = (b: number) => Math.round(b / 1048576);
  setInterval(() => {
    const m = process.memoryUsage();
    const spaces: Record<string, number> = {};
    for (const sp of getHeapSpaceStatistics()) spaces[sp.space_name.replace(/_space$/, '')] = mb(sp.space_used_size);
    const lazy = lazyFreeBytes();
    const line = {
      s: Math.round((performance.now() - t0) / 1000),
      rss: mb(m.rss),
      ...(lazy !== undefined ? { lazyFree: mb(lazy) } : {}),
      heapTotal: mb(m.heapTotal),
      heapUsed: mb(m.heapUsed),
      external: mb(m.external),
      arrayBuffers: mb(m.arrayBuffers),
      notHeapNotExternal: mb(m.rss - m.heapTotal - m.external),
      usedBySpace: spaces,
      streams: server.registry.size,
    };
    process.stderr.write(`MEMORY ${JSON.stringify(line)}\n`);
  }, seconds * 1000).unref();
}

/**
 * Memory this process freed with madvise(MADV_FREE) that the kernel has not taken back
 * yet (/proc/self/smaps_rollup LazyFree): still counted in RSS, reclaimed as soon as the
 * machine needs it. Undefined where the file does not exist.
 */
function lazyFreeBytes(): number | undefined {
  try {
    const m = /^LazyFree:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return [host, Number(address.slice(i + 1))];
}

main().catch((err: unknown) => {
  process.stderr.write(`sds-node-peer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
