/**
 * The event loop's longest stall counted in this thread's CPU time, beside
 * monitorEventLoopDelay's wall-clock figure. On a shared machine the wall-clock delay
 * also counts the time the OS gave the core to other processes (a load average of 7
 * on 2 cores turned a 70 ms stall into 560 ms); the CPU this thread spent between two
 * ticks of a short timer is what our own code blocked the loop for, whatever the load.
 * GC pauses on this thread are in it (they block the loop too); worker threads are not.
 *
 * Also keeps the longest GC pause (PerformanceObserver 'gc'), to tell GC from our code.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';

/** Short enough that one tick rarely spans two tasks of the event loop. */
const TICK_MS = 2;

export class LoopStallMonitor {
  private lastCpuUs = 0;
  private maxStallCpuUs = 0;
  private maxGcMs = 0;
  private maxMajorGcMs = 0;
  private gcPauses = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      this.gcPauses++;
      if (e.duration > this.maxGcMs) this.maxGcMs = e.duration;
      // A gc entry carries detail.kind (the typings leave detail out of PerformanceEntry).
      const kind = (e as { detail?: { kind?: number } | null }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR && e.duration > this.maxMajorGcMs) this.maxMajorGcMs = e.duration;
    }
  });

  start(): void {
    this.lastCpuUs = threadCpuUs();
    this.timer = setInterval(() => {
      const now = threadCpuUs();
      const stall = now - this.lastCpuUs;
      if (stall > this.maxStallCpuUs) this.maxStallCpuUs = stall;
      this.lastCpuUs = now;
    }, TICK_MS);
    this.timer.unref();
    this.gc.observe({ entryTypes: ['gc'] });
  }

  reset(): void {
    this.maxStallCpuUs = 0;
    this.maxGcMs = 0;
    this.maxMajorGcMs = 0;
    this.gcPauses = 0;
    this.lastCpuUs = threadCpuUs();
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
}

function threadCpuUs(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}
