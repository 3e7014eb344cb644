/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self and inclusive time per
 * function, heaviest first. For reading where the node peer spends its time:
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [--top 30] [--from <ms>] [--to <ms>]
 *
 * --from/--to keep only the samples in that window (ms since the profile began),
 * e.g. the fan-out phase of a run; --timeline <ms> prints busy time per bucket of
 * that size first, to find the phases; --stalls <ms> lists the stretches without an
 * idle sample of at least that length (the event loop's stalls) and what ran in
 * each. Inclusive time counts a function once per sample even when it recurses.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  name: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  durationMs: number;
  sampledMs: number;
  idleMs: number;
  gcMs: number;
  functions: FunctionCost[];
}

function label(f: CallFrame): string {
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const url = f.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '~/')
    .replace(/^.*\/dist\//, 'dist/');
  return `${name} ${url}:${f.lineNumber + 1}`;
}

export function summarizeProfile(p: CpuProfile, fromMs = 0, toMs = Infinity): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let t = 0;
  let sampled = 0;
  let idle = 0;
  let gc = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const tMs = t / 1000;
    if (tMs < fromMs || tMs > toMs) continue;
    // A sample's weight is the time to the next sample.
    const w = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const id = p.samples[i]!;
    const node = byId.get(id);
    if (!node) continue;
    sampled += w;
    const fn = node.callFrame.functionName;
    if (fn === '(idle)') {
      idle += w;
      continue;
    }
    if (fn === '(garbage collector)') gc += w;
    const own = label(node.callFrame);
    self.set(own, (self.get(own) ?? 0) + w);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!.callFrame);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + w);
    }
  }
  const functions = [...total].map(([name, totalMs]) => ({ name, selfMs: self.get(name) ?? 0, totalMs }));
  return { durationMs: (p.endTime - p.startTime) / 1000, sampledMs: sampled, idleMs: idle, gcMs: gc, functions };
}

/** Busy (non-idle) ms per bucket, only buckets with any work. */
function printTimeline(p: CpuProfile, bucketMs: number): void {
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const busy = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (idleIds.has(p.samples[i]!)) continue;
    const b = Math.floor(t / 1000 / bucketMs);
    busy.set(b, (busy.get(b) ?? 0) + (p.timeDeltas[i + 1] ?? 0) / 1000);
  }
  console.log(`busy ms per ${bucketMs} ms bucket (start ms: busy)`);
  const line: string[] = [];
  for (const [b, ms] of [...busy].sort((a, b) => a[0] - b[0])) {
    if (ms >= bucketMs * 0.02) line.push(`${b * bucketMs}:${ms.toFixed(0)}`);
  }
  console.log(line.join('  '));
}

/**
 * Stretches of samples with no idle one between them, at least `minMs` long: the
 * event loop's stalls. For each, the functions with the most self and inclusive time.
 */
function printStalls(p: CpuProfile, minMs: number, top: number): void {
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const stalls: Array<{ from: number; to: number }> = [];
  let t = 0;
  let start: number | undefined;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const tMs = t / 1000;
    if (!idleIds.has(p.samples[i]!)) {
      start ??= tMs;
      continue;
    }
    if (start !== undefined && tMs - start >= minMs) stalls.push({ from: start, to: tMs });
    start = undefined;
  }
  console.log(`${stalls.length} stretches without idle of ${minMs} ms or more (sampling gaps included)`);
  for (const st of stalls.sort((a, b) => b.to - b.from - (a.to - a.from)).slice(0, 10)) {
    const s = summarizeProfile(p, st.from, st.to);
    const busy = s.sampledMs - s.idleMs;
    console.log(`\n@${st.from.toFixed(0)} ms: ${(st.to - st.from).toFixed(1)} ms (GC ${s.gcMs.toFixed(1)} ms)`);
    const head = (xs: FunctionCost[], key: 'selfMs' | 'totalMs') =>
      xs
        .sort((a, b) => b[key] - a[key])
        .slice(0, top)
        .map((f) => `  ${f[key].toFixed(1).padStart(6)} ${((100 * f[key]) / busy).toFixed(0).padStart(3)}%  ${f.name}`);
    console.log(' self:');
    console.log(head([...s.functions], 'selfMs').join('\n'));
    console.log(' inclusive:');
    console.log(head([...s.functions], 'totalMs').join('\n'));
  }
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '30' },
      from: { type: 'string', default: '0' },
      to: { type: 'string', default: 'Infinity' },
      timeline: { type: 'string' },
      stalls: { type: 'string' },
    },
  });
  const file = positionals[0];
  if (!file) {
    process.stderr.write('usage: profile-summary.js <file.cpuprofile> [--top N] [--from ms] [--to ms]\n');
    process.exit(1);
  }
  const top = Number(values.top);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (values.timeline) printTimeline(profile, Number(values.timeline));
  if (values.stalls) return printStalls(profile, Number(values.stalls), Math.min(top, 12));
  const s = summarizeProfile(profile, Number(values.from), Number(values.to));
  const busy = s.sampledMs - s.idleMs;
  const pct = (x: number) => `${((100 * x) / busy).toFixed(1).padStart(5)}%`;
  const ms = (x: number) => x.toFixed(0).padStart(7);
  console.log(
    `profile ${s.durationMs.toFixed(0)} ms; window ${s.sampledMs.toFixed(0)} ms: busy ${busy.toFixed(0)} ms, ` +
      `idle ${s.idleMs.toFixed(0)} ms, GC ${s.gcMs.toFixed(0)} ms (${pct(s.gcMs).trim()} of busy)`,
  );
  console.log('\nself time (ms, % of busy)');
  for (const f of [...s.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, top)) {
    console.log(`${ms(f.selfMs)} ${pct(f.selfMs)}  ${f.name}`);
  }
  console.log('\ninclusive time (ms, % of busy)');
  for (const f of [...s.functions].sort((a, b) => b.totalMs - a.totalMs).slice(0, top)) {
    console.log(`${ms(f.totalMs)} ${pct(f.totalMs)}  ${f.name}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
