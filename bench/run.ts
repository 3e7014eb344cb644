/**
 * The benchmark: our server (bench/node-peer.ts) against go-control-plane
 * (bench/go sds-peer), both driven by the same Go load client (sds-load), in the
 * same invocation, alternating node, go, node, go... with a fresh server process
 * per scenario run. Prints one table (and writes it as markdown) with each figure
 * for both servers, their ratio, the spread over repetitions, the core count and
 * the load average.
 *
 *   npm run bench                      # full: 10k streams, 3 repetitions
 *   npm run bench -- --quick           # scale 0.1, 2 repetitions
 *   BENCH_SCALE=0.5 BENCH_REPS=5 npm run bench
 *   npm run bench -- --only fanout-10k,storm-10k --node-arg=--cpu-prof --node-arg=--cpu-prof-dir=/tmp/prof
 *
 * Flags (environment in brackets):
 *   --scale X [BENCH_SCALE]       stream counts x X (default 1)
 *   --reps N [BENCH_REPS]         fresh-server runs per scenario and server (default 3)
 *   --rotations N [BENCH_ROTATIONS]  rotations per fan-out/rotate-all run (default 3)
 *   --conns N [BENCH_CONNS]       HTTP/2 connections per run (default 10, as bench/go/run-peer.sh)
 *   --only a,b                    scenarios: storm-10k fanout-1k fanout-10k rotate-all-10k rotate-all-distinct
 *                                 idle-memory-10k issuance, and soak (never by default: 10+ minutes)
 *   --servers node,go,node-grpcjs which servers (default all three; node-grpcjs is our server on
 *                                 @grpc/grpc-js, for comparison with our own transport)
 *   --issuance-seconds S          per issuance measurement (default 5)
 *   --quick                       --scale 0.1 --reps 2 --rotations 2 --issuance-seconds 2
 *   --smoke                       20 streams, 1 rep, 1 rotation, short pauses (the smoke test)
 *   --out DIR                     where latest.md and latest.json go (default bench/results)
 *   --no-build                    do not run bench/go/build.sh
 *   --node-arg ARG                extra node flag for the node peer (repeatable), e.g. --cpu-prof
 *   --log-level L                 the node peer's log level (default info, as in production)
 *   --soak-seconds S              soak duration (default 600)
 *   --soak-rotate-seconds S       soak: a rotation every S seconds (default 30)
 *   --soak-reconnect-per-minute F soak: fraction of streams reconnecting per minute (default 0.01)
 *
 * rotate-all-distinct gives every secret its own certificate (a CA rollover), issued
 * once by bench/distinct-materials.ts and cached in the temp dir; both servers serve
 * that file. soak runs against the node server only unless --servers says otherwise.
 *
 * Only one benchmark runs at a time on a machine: a second invocation waits for the
 * first (lock file envoy-sds-bench.lock in the temp dir); --smoke runs do not wait.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultValidationWorkers } from '../src/store/validation-pool.js';
import { distinctMaterialsFile, readDistinctMaterials } from './distinct-materials.js';
import { measureDoorCostMicros } from './door-cost.js';
import { measureForge, measureIssuance, type ForgeFigure, type IssuanceFigure, type IssuanceKind } from './issuance.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bench', 'bin');
const NODE_PEER = fileURLToPath(new URL('./node-peer.js', import.meta.url));

/** node: our server on its own HTTP/2 transport; node-grpcjs: the same server on @grpc/grpc-js. */
export type ServerKind = 'node' | 'node-grpcjs' | 'go';
const SCENARIO_IDS = [
  'storm-10k',
  'fanout-1k',
  'fanout-10k',
  'rotate-all-10k',
  'rotate-all-distinct',
  'idle-memory-10k',
  'issuance',
  'soak',
] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];
/** `npm run bench` without --only: all but the soak (10 minutes per server). */
const DEFAULT_SCENARIOS = SCENARIO_IDS.filter((id) => id !== 'soak');

interface Settings {
  scale: number;
  reps: number;
  rotations: number;
  conns: number;
  only: Set<ScenarioId>;
  servers: ServerKind[];
  issuanceSeconds: number;
  outDir: string;
  build: boolean;
  nodeArgs: string[];
  logLevel: string;
  smoke: boolean;
  /** sds-load -settle / -rep-pause. */
  settle: string;
  repPause: string;
  timeout: string;
  /** Whether --servers was given (the soak defaults to node only). */
  serversGiven: boolean;
  soakSeconds: number;
  soakRotateSeconds: number;
  soakReconnectPerMinute: number;
}

interface LoadScenario {
  id: Exclude<ScenarioId, 'issuance'>;
  title: string;
  scenario: 'storm' | 'fanout' | 'rotate-all' | 'idle-memory' | 'soak';
  baseStreams: number;
  names: 'single' | 'distinct';
  /** Every secret its own certificate (bench/distinct-materials.ts), served by both peers. */
  distinctMaterials?: boolean;
}

const LOAD_SCENARIOS: LoadScenario[] = [
  { id: 'fanout-1k', title: 'fan-out', scenario: 'fanout', baseStreams: 1000, names: 'single' },
  { id: 'fanout-10k', title: 'fan-out', scenario: 'fanout', baseStreams: 10000, names: 'single' },
  { id: 'storm-10k', title: 'connect storm', scenario: 'storm', baseStreams: 10000, names: 'distinct' },
  { id: 'rotate-all-10k', title: 'bulk rotation', scenario: 'rotate-all', baseStreams: 10000, names: 'distinct' },
  {
    id: 'rotate-all-distinct',
    title: 'CA rollover',
    scenario: 'rotate-all',
    baseStreams: 10000,
    names: 'distinct',
    distinctMaterials: true,
  },
  { id: 'idle-memory-10k', title: 'idle memory', scenario: 'idle-memory', baseStreams: 10000, names: 'distinct' },
  { id: 'soak', title: 'soak', scenario: 'soak', baseStreams: 10000, names: 'distinct', distinctMaterials: true },
];

function settings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string' },
      reps: { type: 'string' },
      rotations: { type: 'string' },
      conns: { type: 'string' },
      only: { type: 'string' },
      servers: { type: 'string' },
      'issuance-seconds': { type: 'string' },
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      out: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'node-arg': { type: 'string', multiple: true },
      'log-level': { type: 'string' },
      'soak-seconds': { type: 'string' },
      'soak-rotate-seconds': { type: 'string' },
      'soak-reconnect-per-minute': { type: 'string' },
    },
    strict: true,
  });
  const env = process.env;
  const num = (flag: string | undefined, envName: string, dflt: number, min: number): number => {
    const raw = flag ?? env[envName];
    if (raw === undefined || raw === '') return dflt;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min) throw new Error(`${envName.toLowerCase()}: expected a number >= ${min}, got ${raw}`);
    return v;
  };
  const quick = values.quick;
  const smoke = values.smoke;
  const only = new Set<ScenarioId>();
  for (const s of (values.only ?? DEFAULT_SCENARIOS.join(','))
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (!(SCENARIO_IDS as readonly string[]).includes(s)) throw new Error(`--only: unknown scenario ${s} (${SCENARIO_IDS.join(', ')})`);
    only.add(s as ScenarioId);
  }
  const servers = (values.servers ?? 'node,go,node-grpcjs').split(',').map((x) => x.trim());
  for (const s of servers) if (s !== 'node' && s !== 'node-grpcjs' && s !== 'go') throw new Error(`--servers: unknown server ${s}`);
  return {
    scale: smoke ? 0 : num(values.scale, 'BENCH_SCALE', quick ? 0.1 : 1, 0.0001),
    reps: Math.round(num(values.reps, 'BENCH_REPS', smoke ? 1 : quick ? 2 : 3, 1)),
    rotations: Math.round(num(values.rotations, 'BENCH_ROTATIONS', smoke ? 1 : quick ? 2 : 3, 1)),
    conns: Math.round(num(values.conns, 'BENCH_CONNS', smoke ? 2 : 10, 1)),
    only,
    servers: servers as ServerKind[],
    issuanceSeconds: num(values['issuance-seconds'], 'BENCH_ISSUANCE_SECONDS', smoke ? 0.2 : quick ? 2 : 5, 0.01),
    outDir: values.out ?? join(ROOT, 'bench', 'results'),
    build: !values['no-build'],
    nodeArgs: values['node-arg'] ?? [],
    logLevel: values['log-level'] ?? 'info',
    smoke,
    settle: smoke ? '200ms' : '3s',
    repPause: smoke ? '200ms' : '1s',
    // Our server validates every secret at the door (~1-3 ms each on this machine),
    // so a 10k rotate-all takes tens of seconds per rotation: the deadline is generous.
    timeout: smoke ? '60s' : '1200s',
    serversGiven: values.servers !== undefined,
    soakSeconds: num(values['soak-seconds'], 'BENCH_SOAK_SECONDS', smoke ? 5 : 600, 1),
    soakRotateSeconds: num(values['soak-rotate-seconds'], 'BENCH_SOAK_ROTATE_SECONDS', smoke ? 2 : 30, 0.1),
    soakReconnectPerMinute: num(values['soak-reconnect-per-minute'], 'BENCH_SOAK_RECONNECT_PER_MINUTE', 0.01, 0),
  };
}

// ------------------------------------------------------------------ processes

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const c of live) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

interface RunningPeer {
  kind: ServerKind;
  proc: ChildProcess;
  addr: string;
  control: string;
  logFile: string;
  startMs: number;
}

/**
 * The runtime settings the image ships (Dockerfile ENV: NODE_OPTIONS, MALLOC_ARENA_MAX),
 * so the node peer is measured as it runs in production. Read from the Dockerfile: one
 * source of truth.
 */
const IMAGE_RUNTIME_ENV: Record<string, string> = (() => {
  const out: Record<string, string> = {};
  let dockerfile: string;
  try {
    dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  } catch {
    return out;
  }
  for (const m of dockerfile.matchAll(/^\s*(?:ENV\s+)?(NODE_OPTIONS|MALLOC_ARENA_MAX)=(\S+?)\s*\\?$/gm)) out[m[1]!] = m[2]!;
  return out;
})();

async function startPeer(
  kind: ServerKind,
  secrets: number,
  s: Settings,
  logFile: string,
  materials?: string,
  peerArgs: readonly string[] = [],
): Promise<RunningPeer> {
  const t0 = performance.now();
  const logFd = openSync(logFile, 'w');
  const [cmd, args] =
    kind !== 'go'
      ? [
          process.execPath,
          [
            '--expose-gc',
            ...s.nodeArgs,
            NODE_PEER,
            '--secrets',
            String(secrets),
            '--log-level',
            s.logLevel,
            '--transport',
            kind === 'node-grpcjs' ? 'grpc-js' : 'http2',
            ...peerArgs,
          ],
        ]
      : [join(BIN, 'sds-peer'), ['-secrets', String(secrets)]];
  if (materials) args.push(kind === 'go' ? '-materials' : '--materials', materials);
  const env = kind === 'go' ? process.env : { ...process.env, ...IMAGE_RUNTIME_ENV };
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', logFd], cwd: ROOT, env });
  closeSync(logFd);
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return new Promise<RunningPeer>((resolve, reject) => {
    let buf = '';
    let addr = '';
    let control = '';
    const timer = setTimeout(() => fail(new Error(`${kind} peer did not start within 600 s`)), 600_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${err.message}; log ${logFile}:\n${tail(logFile)}`));
    };
    proc.once('exit', (code, sig) => fail(new Error(`${kind} peer exited early (${code ?? sig})`)));
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      // What the peer prints after it is ready (e.g. --node-arg=--trace-gc) goes beside its log.
      if (control) return void appendFileSync(`${logFile}.stdout`, chunk);
      buf += chunk;
      for (const line of buf.split('\n')) {
        const m = /^(LISTENING|CONTROL) (\S+)/.exec(line);
        if (m?.[1] === 'LISTENING') addr = m[2]!;
        if (m?.[1] === 'CONTROL') control = `http://${m[2]!}`;
      }
      if (addr && control) {
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        proc.once('exit', () => live.delete(proc));
        resolve({ kind, proc, addr, control, logFile, startMs: performance.now() - t0 });
      }
    });
  });
}

async function stopPeer(p: RunningPeer): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.proc.once('exit', () => resolve()));
  p.proc.kill('SIGTERM');
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function memoryLines(file: string): unknown[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('MEMORY '))
      .map((l) => JSON.parse(l.slice('MEMORY '.length)) as unknown);
  } catch {
    return [];
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function runLoad(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(join(BIN, 'sds-load'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    proc.once('close', (code) => {
      live.delete(proc);
      resolve({ code, stdout, stderr });
    });
  });
}

// ------------------------------------------------------------------ runs

/** The parts of sds-load's JSON we read (bench/go/README.md). */
interface Dist {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}
interface LoadResult {
  ok: boolean;
  error?: string;
  open?: { totalMs: number; latencyMs: Dist; arrivalMs: Dist; clientCpuMs: number; serverCpuMs?: number };
  rotations?: Array<{
    timeToAllMs: number;
    latencyMs: Dist;
    serverUpdateMs?: number;
    extraResponses: number;
    serverCpuMs?: number;
  }>;
  summary?: { timeToAllMs: number; p50Ms: number; p99Ms: number; maxMs: number };
  memory?: { rssBytesPerStream: number; heapInusePerStream: number; serverStreams?: number };
  soak?: SoakFigures;
  /** GET /stats at the end; the node peer adds eventLoopDelayMaxMs (since the first rotation). */
  serverStats?: Record<string, number>;
  badResponses: number;
  loadavg?: number[];
}

/** sds-load -scenario soak (bench/go/load/soak.go). */
interface SoakFigures {
  seconds: number;
  rotations: number;
  reconnects: number;
  streamsLost: number;
  serverStreamsEnd?: number;
  rssAfterFirstRotation: number;
  rssEnd: number;
  heapAfterFirstRotation: number;
  heapEnd: number;
  timeToAllMs: Dist;
}

interface RunRecord {
  scenario: ScenarioId;
  server: ServerKind;
  rep: number;
  streams: number;
  secrets: number;
  ok: boolean;
  error?: string;
  loadavgBefore: number[];
  peerStartMs?: number;
  result?: LoadResult;
  /** Soak, node peers: the peer's `MEMORY` lines (bench/node-peer.ts --memory-log-seconds), where its memory sat over time. */
  memoryLog?: unknown[];
}

/** Seconds between the node peer's memory lines in a soak. */
const SOAK_MEMORY_LOG_SECONDS = 15;

/** Streams of a scenario run: its base count x scale; 20 in a smoke run. */
function streamsFor(sc: LoadScenario, s: Settings): number {
  return s.smoke ? 20 : Math.max(1, Math.round(sc.baseStreams * s.scale));
}

async function loadRun(sc: LoadScenario, server: ServerKind, rep: number, s: Settings, logDir: string): Promise<RunRecord> {
  const streams = streamsFor(sc, s);
  // A fan-out is about one secret: the servers hold just bench-0 (sds-load rotates
  // names=all, which would otherwise also rewrite every other secret first). With
  // distinct names, the servers hold one secret per stream (bench-0..N-1).
  const secrets = sc.names === 'single' ? 1 : streams;
  const rec: RunRecord = { scenario: sc.id, server, rep, streams, secrets, ok: false, loadavgBefore: loadavg() };
  let peer: RunningPeer | undefined;
  try {
    let materials: string | undefined;
    if (sc.distinctMaterials) {
      // Every rotation of rotate-all-distinct brings certificates not seen before; the
      // soak alternates two sets (what matters there is that nothing accumulates).
      const generations = sc.scenario === 'soak' ? 2 : s.rotations + 1;
      materials = await distinctMaterialsFile(secrets, generations, undefined, (m) => process.stderr.write(`bench: ${m}\n`));
    }
    const soakMemory = sc.scenario === 'soak' && server !== 'go';
    const peerArgs = soakMemory ? ['--memory-log-seconds', String(SOAK_MEMORY_LOG_SECONDS)] : [];
    peer = await startPeer(server, secrets, s, join(logDir, `${sc.id}-${server}-${rep}.log`), materials, peerArgs);
    rec.peerStartMs = Math.round(peer.startMs);
    const args = [
      '-addr',
      peer.addr,
      '-control',
      peer.control,
      '-server-pid',
      String(peer.proc.pid),
      '-json',
      '-scenario',
      sc.scenario,
      '-streams',
      String(streams),
      '-conns',
      String(Math.min(s.conns, streams)),
      '-names',
      sc.names,
      '-timeout',
      sc.scenario === 'soak' ? `${Math.max(1200, Math.ceil(s.soakSeconds) + 600)}s` : s.timeout,
      '-settle',
      s.settle,
      '-rep-pause',
      s.repPause,
    ];
    if (sc.scenario === 'fanout' || sc.scenario === 'rotate-all') args.push('-reps', String(s.rotations));
    if (sc.scenario === 'soak') {
      args.push(
        '-soak-duration',
        `${s.soakSeconds}s`,
        '-rotate-every',
        `${s.soakRotateSeconds}s`,
        '-reconnect-per-minute',
        String(s.soakReconnectPerMinute),
      );
    }
    const out = await runLoad(args);
    const line = out.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop();
    if (!line) throw new Error(`sds-load printed no JSON (exit ${out.code}): ${out.stderr.trim()}`);
    rec.result = JSON.parse(line) as LoadResult;
    rec.ok = rec.result.ok && out.code === 0 && rec.result.badResponses === 0;
    if (!rec.ok) rec.error = rec.result.error ?? `exit ${out.code}, ${rec.result.badResponses} bad responses`;
    if (rec.ok && sc.scenario === 'soak' && rec.result.soak && rec.result.soak.streamsLost !== 0) {
      rec.ok = false;
      rec.error = `${rec.result.soak.streamsLost} streams lost`;
    }
    if (rec.ok && sc.scenario === 'idle-memory' && rec.result.memory?.serverStreams !== undefined) {
      if (rec.result.memory.serverStreams !== streams) {
        rec.ok = false;
        rec.error = `server reports ${rec.result.memory.serverStreams} streams, expected ${streams}`;
      }
    }
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (peer) await stopPeer(peer);
  }
  if (peer && sc.scenario === 'soak' && server !== 'go') rec.memoryLog = memoryLines(peer.logFile);
  return rec;
}

// ------------------------------------------------------------------ figures

interface Figure {
  group: string;
  label: string;
  unit: string;
  /** Fewer digits for big numbers. */
  digits: number;
  node: number[];
  go: number[];
  /** The same server on @grpc/grpc-js, for comparison (absent for figures without it). */
  grpcjs?: number[];
  target?: { text: string; check: (node: number, go: number | undefined) => boolean };
  note?: string;
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!; // lower median, as sds-load summarises
};

/** rotate-all-distinct's completion target: the door's cost per certificate x certificates / workers + 1 s. */
interface RolloverBudget {
  costMicros: number;
  workers: number;
}

function figuresFor(sc: LoadScenario, runs: RunRecord[], streams: number, budget?: RolloverBudget): Figure[] {
  const ok = (server: ServerKind) => runs.filter((r) => r.server === server && r.ok && r.result).map((r) => r.result!);
  const pick = (get: (r: LoadResult) => number | undefined) => ({
    node: ok('node')
      .map(get)
      .filter((x): x is number => typeof x === 'number'),
    go: ok('go')
      .map(get)
      .filter((x): x is number => typeof x === 'number'),
    grpcjs: ok('node-grpcjs')
      .map(get)
      .filter((x): x is number => typeof x === 'number'),
  });
  const rotMedian = (get: (r: NonNullable<LoadResult['rotations']>[number]) => number | undefined) => (r: LoadResult) => {
    const v = (r.rotations ?? []).map(get).filter((x): x is number => typeof x === 'number');
    return v.length ? median(v) : undefined;
  };
  const group =
    `${sc.title}, ${streams.toLocaleString('en-US')} streams` +
    (sc.names === 'single'
      ? ' on one secret'
      : sc.distinctMaterials
        ? ', each on its own secret, every secret a distinct certificate'
        : sc.scenario === 'rotate-all'
          ? ', each on its own secret'
          : '');
  const serverStat = (key: string) => (r: LoadResult) => r.serverStats?.[key];
  switch (sc.scenario) {
    case 'fanout': {
      const big = sc.baseStreams === 10000;
      return [
        {
          group,
          label: 'p99 push latency',
          unit: 'ms',
          digits: 1,
          ...pick((r) => r.summary?.p99Ms),
          target: big
            ? { text: '<= go and < 250 ms', check: (n: number, g: number | undefined) => n < 250 && (g === undefined || n <= g) }
            : { text: '<= 1.5x go', check: (n: number, g: number | undefined) => g === undefined || n <= 1.5 * g },
        },
        { group, label: 'p50 push latency', unit: 'ms', digits: 1, ...pick((r) => r.summary?.p50Ms) },
        { group, label: 'time to all streams', unit: 'ms', digits: 1, ...pick((r) => r.summary?.timeToAllMs) },
        { group, label: 'server CPU per rotation', unit: 'ms', digits: 0, ...pick(rotMedian((x) => x.serverCpuMs)) },
        {
          group,
          label: 'extra responses (should be 0)',
          unit: '',
          digits: 0,
          ...pick((r) => (r.rotations ?? []).reduce((a, x) => a + x.extraResponses, 0)),
        },
      ];
    }
    case 'rotate-all':
      if (sc.distinctMaterials) {
        const limitMs = budget ? (budget.costMicros * streams) / budget.workers / 1000 + 1000 : undefined;
        return [
          {
            group,
            label: 'time to all streams',
            unit: 'ms',
            digits: 0,
            ...pick((r) => r.summary?.timeToAllMs),
            ...(limitMs !== undefined && budget
              ? {
                  target: {
                    text: `<= ${fmt(limitMs, 0)} ms (door cost x streams / ${budget.workers} worker(s) + 1 s)`,
                    check: (n: number) => n <= limitMs,
                  },
                }
              : {}),
          },
          ...(budget
            ? [
                {
                  group,
                  label: "store's door per certificate (in-process CPU, before the runs)",
                  unit: 'µs',
                  digits: 0,
                  node: [budget.costMicros],
                  go: [],
                },
              ]
            : []),
          { group, label: 'p99 push latency', unit: 'ms', digits: 0, ...pick((r) => r.summary?.p99Ms) },
          {
            group,
            label: 'event loop longest delay',
            unit: 'ms',
            digits: 1,
            ...pick(serverStat('eventLoopDelayMaxMs')),
            note: 'node only: monitorEventLoopDelay from the first rotation on',
            target: { text: '< 50 ms', check: (n: number) => n < 50 },
          },
          {
            group,
            label: 'event loop longest stall, thread CPU',
            unit: 'ms',
            digits: 1,
            ...pick(serverStat('loopStallCpuMaxMs')),
            note: 'node only: CPU the main thread spent between two 2 ms ticks; not inflated by other processes',
          },
          { group, label: 'longest GC pause', unit: 'ms', digits: 1, ...pick(serverStat('gcPauseMaxMs')), note: 'node only' },
          { group, label: 'offers made (rotate call, server)', unit: 'ms', digits: 0, ...pick(rotMedian((x) => x.serverUpdateMs)) },
          { group, label: 'server CPU per rotation', unit: 'ms', digits: 0, ...pick(rotMedian((x) => x.serverCpuMs)) },
        ];
      }
      return [
        { group, label: 'time to all streams', unit: 'ms', digits: 0, ...pick((r) => r.summary?.timeToAllMs) },
        { group, label: 'p99 push latency', unit: 'ms', digits: 0, ...pick((r) => r.summary?.p99Ms) },
        { group, label: 'store update call (server)', unit: 'ms', digits: 0, ...pick(rotMedian((x) => x.serverUpdateMs)) },
        { group, label: 'server CPU per rotation', unit: 'ms', digits: 0, ...pick(rotMedian((x) => x.serverCpuMs)) },
      ];
    case 'storm':
      return [
        {
          group,
          label: 'all first responses',
          unit: 'ms',
          digits: 0,
          ...pick((r) => r.open?.totalMs),
          target: { text: '<= 1.2x go (goal: <= go)', check: (n: number, g: number | undefined) => g === undefined || n <= 1.2 * g },
        },
        { group, label: 'p99 first-response latency', unit: 'ms', digits: 0, ...pick((r) => r.open?.latencyMs.p99) },
        { group, label: 'server CPU', unit: 'ms', digits: 0, ...pick((r) => r.open?.serverCpuMs) },
      ];
    case 'soak': {
      const mb = (b: number | undefined) => (b === undefined ? undefined : b / (1024 * 1024));
      return [
        {
          group,
          label: 'streams lost (should be 0)',
          unit: '',
          digits: 0,
          ...pick((r) => r.soak?.streamsLost),
          target: { text: '0', check: (n: number) => n === 0 },
        },
        { group, label: 'rotations', unit: '', digits: 0, ...pick((r) => r.soak?.rotations) },
        { group, label: 'reconnects', unit: '', digits: 0, ...pick((r) => r.soak?.reconnects) },
        { group, label: 'RSS after the first rotation', unit: 'MB', digits: 1, ...pick((r) => mb(r.soak?.rssAfterFirstRotation)) },
        { group, label: 'RSS at the end', unit: 'MB', digits: 1, ...pick((r) => mb(r.soak?.rssEnd)) },
        {
          group,
          label: 'RSS end / after first rotation',
          unit: '',
          digits: 3,
          ...pick((r) => (r.soak && r.soak.rssAfterFirstRotation > 0 ? r.soak.rssEnd / r.soak.rssAfterFirstRotation : undefined)),
          target: { text: '<= 1.10', check: (n: number) => n <= 1.1 },
        },
        { group, label: 'time to all streams, worst rotation', unit: 'ms', digits: 0, ...pick((r) => r.soak?.timeToAllMs.max) },
        { group, label: 'event loop longest delay', unit: 'ms', digits: 1, ...pick(serverStat('eventLoopDelayMaxMs')), note: 'node only' },
        {
          group,
          label: 'event loop longest stall, thread CPU',
          unit: 'ms',
          digits: 1,
          ...pick(serverStat('loopStallCpuMaxMs')),
          note: 'node only',
        },
      ];
    }
    case 'idle-memory':
      return [
        {
          group,
          label: 'RSS per idle stream',
          unit: 'KB',
          digits: 2,
          ...pick((r) => kb(r.memory?.rssBytesPerStream)),
          target: { text: '< 10 KB', check: (n: number) => n < 10 },
        },
        {
          group,
          label: 'heap per idle stream',
          unit: 'KB',
          digits: 2,
          ...pick((r) => kb(r.memory?.heapInusePerStream)),
          note: 'node: V8 heapUsed; go: HeapInuse',
        },
        { group, label: 'time to open all', unit: 'ms', digits: 0, ...pick((r) => r.open?.totalMs) },
      ];
  }
}

const kb = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : bytes / 1024);

// ------------------------------------------------------------------ table

function fmt(v: number, digits: number): string {
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function cell(values: number[], digits: number): [string, string] {
  if (values.length === 0) return ['—', ''];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return [fmt(median(values), digits), values.length > 1 ? `${fmt(lo, digits)}–${fmt(hi, digits)}` : '(1 run)'];
}

interface Table {
  header: string[];
  rows: string[][];
  groups: (string | undefined)[];
}

function buildTable(figures: Figure[]): Table {
  const withGrpcjs = figures.some((f) => (f.grpcjs?.length ?? 0) > 0);
  const header = [
    'figure',
    'node',
    'node min–max',
    'go-control-plane',
    'go min–max',
    'node/go',
    'target',
    ...(withGrpcjs ? ['node on grpc-js', 'grpc-js min–max', 'grpc-js/go'] : []),
  ];
  const rows: string[][] = [];
  const groups: (string | undefined)[] = [];
  let lastGroup = '';
  for (const f of figures) {
    const [nm, nr] = cell(f.node, f.digits);
    const [gm, gr] = cell(f.go, f.digits);
    let ratio = '';
    if (f.node.length && f.go.length && median(f.go) !== 0) ratio = `${(median(f.node) / median(f.go)).toFixed(2)}×`;
    let target = '';
    if (f.target) {
      if (f.node.length) {
        const pass = f.target.check(median(f.node), f.go.length ? median(f.go) : undefined);
        target = `${pass ? 'PASS' : 'FAIL'} (${f.target.text})`;
      } else target = f.target.text;
    }
    const unit = f.unit ? ` (${f.unit})` : '';
    groups.push(f.group !== lastGroup ? f.group : undefined);
    lastGroup = f.group;
    const row = [`${f.label}${unit}${f.note ? ` [${f.note}]` : ''}`, nm, nr, gm, gr, ratio, target];
    if (withGrpcjs) {
      const j = f.grpcjs ?? [];
      const [jm, jr] = cell(j, f.digits);
      row.push(jm, jr, j.length && f.go.length && median(f.go) !== 0 ? `${(median(j) / median(f.go)).toFixed(2)}×` : '');
    }
    rows.push(row);
  }
  return { header, rows, groups };
}

function textTable(t: Table): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) =>
    cols
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(t.header), widths.map((w) => '-'.repeat(w)).join('  ')];
  t.rows.forEach((r, i) => {
    const g = t.groups[i];
    if (g) out.push(`${g}:`);
    out.push(line([`  ${r[0]!}`, ...r.slice(1)]));
  });
  return out.join('\n');
}

function markdownTable(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [`| ${t.header.join(' | ')} |`, `| ${t.header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`];
  t.rows.forEach((r, i) => {
    const g = t.groups[i];
    if (g) out.push(`| **${esc(g)}** |${' |'.repeat(t.header.length - 1)}`);
    out.push(`| ${r.map(esc).join(' | ')} |`);
  });
  return out.join('\n');
}

// ------------------------------------------------------------------ lock

/**
 * One benchmark at a time on this machine: two runs at once disturb each other's
 * figures (it happened). A lock file holds the owner's pid; a stale one (owner gone)
 * is taken over. Smoke runs measure nothing and do not take it.
 */
const LOCK = join(tmpdir(), 'envoy-sds-bench.lock');

async function acquireLock(say: (m: string) => void): Promise<() => void> {
  let announced = false;
  for (;;) {
    try {
      writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      const release = () => {
        try {
          if (readFileSync(LOCK, 'utf8') === String(process.pid)) unlinkSync(LOCK);
        } catch {
          // already gone
        }
      };
      process.on('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: number;
    try {
      owner = Number(readFileSync(LOCK, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (!alive(owner)) {
      say(`removing a stale benchmark lock (pid ${owner} is gone)`);
      try {
        unlinkSync(LOCK);
      } catch {
        // someone else took it over
      }
      continue;
    }
    if (!announced) say(`another benchmark (pid ${owner}) is running; waiting for it to finish (${LOCK})`);
    announced = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ------------------------------------------------------------------ main

function goVersion(): string {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().replace(/^go version /, '') : 'unknown';
}

/** The commit measured, and whether src/ differs from it (others edit the same checkout). */
function sourceState(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown commit';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' });
  return `commit ${head.stdout.trim()}${dirty.stdout.trim() ? ' (src/ has uncommitted changes)' : ''}`;
}

function fmtLoad(l: number[]): string {
  return l.map((x) => x.toFixed(2)).join(' ');
}

async function main(argv = process.argv.slice(2)): Promise<number> {
  const s = settings(argv);
  const say = (m: string) => process.stderr.write(`bench: ${m}\n`);
  const release = s.smoke ? () => undefined : await acquireLock(say);
  const logDir = mkdtempSync(join(tmpdir(), 'sds-bench-'));
  const started = new Date();
  const source = sourceState();
  const loadStart = loadavg();
  const loadScenarios = LOAD_SCENARIOS.filter((sc) => s.only.has(sc.id));

  if (loadScenarios.length > 0 && s.servers.length > 0) {
    if (s.build) {
      say('building the Go tools (bench/go/build.sh)');
      const b = spawnSync(join(ROOT, 'bench', 'go', 'build.sh'), { stdio: ['ignore', 'inherit', 'inherit'] });
      if (b.status !== 0) {
        say(`bench/go/build.sh failed (exit ${b.status ?? b.signal}); the load client is Go, so no server scenario can run`);
        return 2;
      }
    } else {
      const missing = ['sds-load', 'sds-peer'].filter((b) => !existsSync(join(BIN, b)));
      if (missing.length > 0) {
        say(`--no-build, but bench/bin has no ${missing.join(' or ')}: run once without --no-build (it builds the Go tools)`);
        return 2;
      }
    }
  }

  // The CA-rollover target needs the door's cost per certificate on this machine,
  // measured before any server runs (the node peer validates with the same code).
  let rolloverBudget: RolloverBudget | undefined;
  const rollover = loadScenarios.find((sc) => sc.id === 'rotate-all-distinct');
  if (rollover && s.servers.includes('node')) {
    const file = await distinctMaterialsFile(streamsFor(rollover, s), s.rotations + 1, undefined, say);
    const sample = readDistinctMaterials(file)[0]!.slice(0, 1200);
    rolloverBudget = { costMicros: measureDoorCostMicros(sample), workers: defaultValidationWorkers() };
    say(
      `store's door: ${rolloverBudget.costMicros.toFixed(0)} µs CPU per certificate (${sample.length} distinct), ${rolloverBudget.workers} validation worker(s)`,
    );
  }

  const runs: RunRecord[] = [];
  for (const sc of loadScenarios) {
    const reps = sc.scenario === 'soak' ? 1 : s.reps;
    const servers = sc.scenario === 'soak' && !s.serversGiven ? (['node'] as ServerKind[]) : s.servers;
    for (let rep = 1; rep <= reps; rep++) {
      for (const server of servers) {
        say(`${sc.id} ${server} run ${rep}/${reps} (loadavg ${fmtLoad(loadavg())})`);
        const rec = await loadRun(sc, server, rep, s, logDir);
        runs.push(rec);
        if (!rec.ok) say(`  FAILED: ${rec.error ?? 'unknown error'}`);
        else say(`  ok (peer ready in ${rec.peerStartMs ?? '?'} ms) ${headline(sc, rec.result!)}`);
        if (rec.memoryLog?.length) {
          say(`  memory (MB) over time, first and last: ${JSON.stringify(rec.memoryLog[0])} ... ${JSON.stringify(rec.memoryLog.at(-1))}`);
        }
      }
    }
  }

  const figures: Figure[] = [];
  for (const sc of loadScenarios) {
    const scRuns = runs.filter((r) => r.scenario === sc.id);
    figures.push(...figuresFor(sc, scRuns, streamsFor(sc, s), sc.id === 'rotate-all-distinct' ? rolloverBudget : undefined));
  }

  const issuance: IssuanceFigure[] = [];
  let forge: ForgeFigure | undefined;
  let forgeNote = '';
  if (s.only.has('issuance')) {
    const kinds: IssuanceKind[] = ['ecdsa-p256', 'rsa-2048'];
    for (let rep = 1; rep <= s.reps; rep++) {
      for (const kind of kinds) {
        say(`issuance ${kind} run ${rep}/${s.reps} (loadavg ${fmtLoad(loadavg())})`);
        const f = await measureIssuance(kind, s.issuanceSeconds, 4, s.smoke ? 2 : 8);
        issuance.push(f);
        say(`  ${f.leaves} leaves in ${f.seconds.toFixed(2)} s: ${f.perSecond.toFixed(1)}/s`);
      }
    }
    say('issuance baseline: node-forge RSA 2048 (once)');
    forge = measureForge(s.issuanceSeconds, s.smoke ? 1 : 3);
    forgeNote = forge
      ? `node-forge ${forge.version} (installed as a dependency of acme-client), RSA 2048 CA issuing RSA 2048 leaves, ` +
        `key generation included, one at a time (synchronous JavaScript): ${forge.perSecond.toFixed(1)} leaves/s ` +
        `(${forge.leaves} in ${forge.seconds.toFixed(1)} s). node-forge has no ECDSA certificates.`
      : 'node-forge is not installed: no baseline.';
    say(`  ${forgeNote}`);
    const per = (k: IssuanceKind) => issuance.filter((f) => f.kind === k).map((f) => f.perSecond);
    figures.push(
      {
        group: 'issuance (src/pki, in-process, key generation included, 4 in flight)',
        label: 'ECDSA P-256 CA -> P-256 leaves',
        unit: 'leaves/s',
        digits: 0,
        node: per('ecdsa-p256'),
        go: [],
        target: { text: '>= 300/s', check: (n: number) => n >= 300 },
      },
      {
        group: 'issuance (src/pki, in-process, key generation included, 4 in flight)',
        label: 'RSA 2048 CA -> RSA 2048 leaves',
        unit: 'leaves/s',
        digits: 1,
        node: per('rsa-2048'),
        go: [],
      },
    );
    if (forge) {
      figures.push({
        group: 'issuance (src/pki, in-process, key generation included, 4 in flight)',
        label: `baseline node-forge ${forge.version}, RSA 2048 (once, 1 at a time)`,
        unit: 'leaves/s',
        digits: 1,
        node: [forge.perSecond],
        go: [],
      });
    }
  }

  const loadEnd = loadavg();
  const runLoads = runs.map((r) => r.loadavgBefore[0] ?? 0);
  const table = buildTable(figures);
  const failed = runs.filter((r) => !r.ok);
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  const streamsNote = loadScenarios.length
    ? `${s.smoke ? 'smoke run: 20 streams per scenario' : `scale ${s.scale} (streams as labelled)`}, ${s.reps} fresh-server run(s) per scenario and server, ` +
      `alternating ${s.servers.join(', ')}; ${s.rotations} rotation(s) per fan-out/rotate-all run (figure = lower median of the rotations, ` +
      `then lower median over runs; min–max is over runs); ${s.conns} HTTP/2 connections; servers hold 1 secret for a fan-out, one per stream otherwise`
    : '';
  const meta = [
    `date ${started.toISOString()}; ${source} at start; ${availableParallelism()} cores (${cpuModel}); node ${process.version}; go ${goVersion()}`,
    `loadavg (1, 5, 15 min) at start ${fmtLoad(loadStart)}, at end ${fmtLoad(loadEnd)}` +
      (runLoads.length ? `; 1-min loadavg before each run ${fmtLoad([Math.min(...runLoads)])}–${fmtLoad([Math.max(...runLoads)])}` : ''),
    ...(streamsNote ? [streamsNote] : []),
    `node peer: real server (startServer), log level ${s.logLevel}${s.nodeArgs.length ? `, node flags ${s.nodeArgs.join(' ')}` : ''}, ` +
      `runtime as the image (${
        Object.entries(IMAGE_RUNTIME_ENV)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ') || 'Dockerfile sets none'
      }); ` +
      `go peer: go-control-plane v0.14.0 LinearCache (bench/go)`,
    'lower is better except leaves/s; node/go is the ratio of the medians',
    ...(forgeNote ? [`issuance baseline: ${forgeNote}`] : []),
    ...(failed.length ? [`FAILED runs: ${failed.map((r) => `${r.scenario}/${r.server}/${r.rep}: ${r.error ?? '?'}`).join('; ')}`] : []),
  ];

  const text = `${meta.join('\n')}\n\n${textTable(table)}\n`;
  process.stdout.write(`\n${text}`);
  mkdirSync(s.outDir, { recursive: true });
  const md =
    `# SDS benchmark: envoy-sds-server vs go-control-plane\n\n` +
    `${meta.map((m) => `- ${m}`).join('\n')}\n\n${markdownTable(table)}\n\n` +
    `Generated by \`npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}\` (bench/run.ts).\n`;
  writeFileSync(join(s.outDir, 'latest.md'), md);
  writeFileSync(
    join(s.outDir, 'latest.json'),
    `${JSON.stringify({ started: started.toISOString(), settings: { ...s, only: [...s.only] }, loadStart, loadEnd, runs, issuance, forge }, null, 1)}\n`,
  );
  say(`wrote ${join(s.outDir, 'latest.md')} and latest.json; server logs in ${logDir}`);
  release();
  return failed.length > 0 ? 1 : 0;
}

function headline(sc: LoadScenario, r: LoadResult): string {
  switch (sc.scenario) {
    case 'fanout':
    case 'rotate-all': {
      const loop = r.serverStats?.['eventLoopDelayMaxMs'];
      const stall = r.serverStats?.['loopStallCpuMaxMs'];
      const gc = r.serverStats?.['gcPauseMaxMs'];
      return (
        `time to all ${r.summary?.timeToAllMs ?? '?'} ms, p99 ${r.summary?.p99Ms ?? '?'} ms` +
        (loop !== undefined ? `, event loop longest delay ${loop.toFixed(1)} ms` : '') +
        (stall !== undefined
          ? ` (thread CPU ${stall.toFixed(1)} ms, longest GC pause ${(gc ?? 0).toFixed(1)} ms, full GC ${(r.serverStats?.['gcMajorPauseMaxMs'] ?? 0).toFixed(1)} ms)`
          : '')
      );
    }
    case 'storm':
      return `all first responses ${r.open?.totalMs ?? '?'} ms`;
    case 'idle-memory':
      return `RSS ${r.memory?.rssBytesPerStream ?? '?'} B/stream, heap ${r.memory?.heapInusePerStream ?? '?'} B/stream`;
    case 'soak':
      return `${r.soak?.rotations ?? '?'} rotations, ${r.soak?.reconnects ?? '?'} reconnects, ${r.soak?.streamsLost ?? '?'} lost, RSS ${r.soak?.rssAfterFirstRotation ?? '?'} -> ${r.soak?.rssEnd ?? '?'} B`;
  }
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAll();
    process.exit(2);
  },
);
