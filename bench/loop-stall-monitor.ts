/**
 * The event loop's longest stall counted in this thread's CPU time, beside
 * monitorEventLoopDelay's wall-clock figure. On a shared machine the wall-clock delay
 * also counts the time the OS gave the core to other processes (a load average of 7
 * on 2 cores turned a 70 ms stall into 560 ms); the CPU this thread spent between two
 * ticks of a short timer is what our own code blocked the loop for, whatever the load.
 * GC pauses on this thread are in it (they block the loop too); worker threads are not.
 *
 * Also keeps the longest GC pauses (PerformanceObserver 'gc'), and the few longest
 * stalls with the GC pauses inside each, to tell GC from our code.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';

/** Short enough that one tick rarely spans two tasks of the event loop. */
const TICK_MS = 2;
/** Stalls kept for the report. */
const KEEP = 5;

interface GcPause {
  startMs: number;
  ms: number;
  major: boolean;
}

export interface Stall {
  /** performance.now() when the stall ended. */
  atMs: number;
  cpuMs: number;
  wallMs: number;
  /** GC pauses that ended inside the stall, wall-clock ms each, `M` for full GCs. */
  gc: string[];
}

export class LoopStallMonitor {
  private lastCpuUs = 0;
  private lastWallMs = 0;
  private maxStallCpuUs = 0;
  private maxGcMs = 0;
  private maxMajorGcMs = 0;
  private gcPauses = 0;
  private readonly recentGc: GcPause[] = [];
  private longest: Stall[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Wall-clock spans of GCs forced by the benchmark (to read memory): not the server's pauses. */
  private readonly forced: Array<[number, number]> = [];
  private readonly gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (this.forced.some(([from, to]) => e.startTime >= from && e.startTime <= to)) continue;
      this.gcPauses++;
      if (e.duration > this.maxGcMs) this.maxGcMs = e.duration;
      // A gc entry carries detail.kind (the typings leave detail out of PerformanceEntry).
      const major = (e as { detail?: { kind?: number } | null }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
      if (major && e.duration > this.maxMajorGcMs) this.maxMajorGcMs = e.duration;
      this.recentGc.push({ startMs: e.startTime, ms: e.duration, major });
      if (this.recentGc.length > 64) this.recentGc.shift();
    }
  });

  start(): void {
    this.reset();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.gc.observe({ entryTypes: ['gc'] });
  }

  reset(): void {
    this.maxStallCpuUs = 0;
    this.maxGcMs = 0;
    this.maxMajorGcMs = 0;
    this.gcPauses = 0;
    this.longest = [];
    this.lastCpuUs = threadCpuUs();
    this.lastWallMs = performance.now();
  }

  /**
   * Runs a GC the benchmark asks for (GET /stats?gc=1, to read memory after it), left
   * out of the figures: the time it takes is not a stall the server would have.
   */
  forcedGc(gc: () => void): void {
    const from = performance.now();
    gc();
    this.forced.push([from, performance.now()]);
    if (this.forced.length > 16) this.forced.shift();
    this.lastCpuUs = threadCpuUs();
  }

  private tick(): void {
    const cpu = threadCpuUs();
    const wall = performance.now();
    const stall = cpu - this.lastCpuUs;
    if (stall > this.maxStallCpuUs) this.maxStallCpuUs = stall;
    const smallest = this.longest.length < KEEP ? 0 : this.longest[this.longest.length - 1]!.cpuMs;
    if (stall / 1000 > smallest && stall > 5000) {
      const from = this.lastWallMs;
      // GC entries arrive a little after the pause: those of this stall are matched on the next report.
      this.longest.push({ atMs: wall, cpuMs: stall / 1000, wallMs: wall - from, gc: [] });
      this.longest.sort((a, b) => b.cpuMs - a.cpuMs);
      this.longest.length = Math.min(this.longest.length, KEEP);
    }
    this.lastCpuUs = cpu;
    this.lastWallMs = wall;
  }

  /** The most CPU this thread spent between two ticks (ms); an idle loop measures about 0. */
  get maxStallCpuMs(): number {
    return this.maxStallCpuUs / 1000;
  }

  get maxGcPauseMs(): number {
    return this.maxGcMs;
  }

  /** The longest mark-compact (full) GC pause, in ms. */
  get maxMajorGcPauseMs(): number {
    return this.maxMajorGcMs;
  }

  get gcPauseCount(): number {
    return this.gcPauses;
  }

  /** The longest stalls since reset(), each with the GC pauses that fell inside it. */
  longestStalls(): Stall[] {
    return this.longest.map((s) => ({
      ...s,
      gc: this.recentGc
        .filter((g) => g.startMs >= s.atMs - s.wallMs && g.startMs <= s.atMs)
        .map((g) => `${g.major ? 'M' : ''}${g.ms.toFixed(1)}`),
    }));
  }
}

function threadCpuUs(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}
