import type { Logger } from '../observability/logger.js';

export interface RateLimitedLogOptions {
  /** Lines of one kind written per interval; the rest are counted and summarised. */
  linesPerInterval: number;
  intervalMs: number;
}

interface Window {
  startedAt: number;
  lines: number;
  suppressedLines: number;
  /** What the suppressed lines stood for (names denied, NACKs). */
  suppressedCount: number;
  msg: string;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Warnings that clients can cause (denied names, NACKs, refused requests) at a bounded
 * rate: a client sending 10 requests of 3,900 denied names writes a few lines, not
 * 39,000. Each kind gets `linesPerInterval` lines per interval; past that, lines are
 * counted and one summary line per interval says how many were left out and what they
 * stood for. Callers already write one line per request, never one per name.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly logger: Logger,
    private readonly opts: RateLimitedLogOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs `fields` at warn unless the kind is over its budget; `count` is what the line stands for. */
  warn(kind: string, log: Logger, fields: Record<string, unknown>, msg: string, count = 1): void {
    const w = this.window(kind, msg);
    if (w.lines < this.opts.linesPerInterval) {
      w.lines++;
      log.warn(fields, msg);
      return;
    }
    w.suppressedLines++;
    w.suppressedCount += count;
    // The summary is written when the interval ends, even if nothing else comes.
    w.timer ??= setTimeout(() => this.summarise(kind), Math.max(0, w.startedAt + this.opts.intervalMs - this.now())).unref();
  }

  private window(kind: string, msg: string): Window {
    const now = this.now();
    let w = this.windows.get(kind);
    if (w && now - w.startedAt >= this.opts.intervalMs) {
      this.summarise(kind);
      w = undefined;
    }
    if (!w) {
      w = { startedAt: now, lines: 0, suppressedLines: 0, suppressedCount: 0, msg, timer: undefined };
      this.windows.set(kind, w);
    }
    return w;
  }

  private summarise(kind: string): void {
    const w = this.windows.get(kind);
    if (!w) return;
    clearTimeout(w.timer);
    this.windows.delete(kind);
    if (w.suppressedLines === 0) return;
    this.logger.warn(
      { kind, suppressedLines: w.suppressedLines, suppressedCount: w.suppressedCount, intervalMs: this.opts.intervalMs },
      `${w.msg}: ${w.suppressedLines} more lines left out in this interval (rate limit)`,
    );
  }
}
