import { pino } from 'pino';

/** Where the batched lines go: a stream, or pino's file-descriptor destination. */
interface LineSink {
  write(chunk: string): unknown;
}

/**
 * A pino destination that gathers the lines logged during one piece of JavaScript and
 * hands them on together, `batchBytes` at a time and the rest when that piece ends
 * (process.nextTick: before the event loop does anything else). A connect storm
 * delivers thousands of keys per turn, and pino's destination costs per write (it
 * measures each string's UTF-8 length): one write per line was about 6% of the server's
 * CPU. The destination stays asynchronous, as pino's default: a synchronous write to a
 * full stdout pipe sleeps 100 ms waiting for the reader (measured: storm 2.6x slower).
 */
export class TurnBatchedDestination {
  private pending = '';
  private scheduled = false;
  private readonly flushNow = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    private readonly sink: LineSink,
    private readonly batchBytes = 16 * 1024,
  ) {}

  /**
   * To a file descriptor (stdout by default) through pino's own asynchronous destination,
   * handed bytes: in its text mode it measures the UTF-8 length of its whole pending
   * tail on every write (16 KB per batch, about 4% of a connect storm's CPU). The lines
   * of the last turn are written when the process exits.
   */
  static toFd(fd = 1): TurnBatchedDestination {
    const boom = pino.destination({ dest: fd, sync: false, contentMode: 'buffer' });
    // In buffer mode SonicBoom's write takes a Buffer; its typings know only strings. Looked
    // up on every call: on EPIPE pino replaces write (and flushSync) with no-ops.
    const bytes = boom as unknown as { write(b: Buffer): boolean; flushSync(): void; destroyed: boolean };
    const batched = new TurnBatchedDestination({ write: (lines: string) => bytes.write(Buffer.from(lines)) });
    process.once('exit', () => {
      if (bytes.destroyed) return;
      try {
        batched.flush();
        bytes.flushSync();
      } catch {
        // Exiting: stdout is gone, there is nowhere left to say so.
      }
    });
    return batched;
  }

  write(line: string): boolean {
    this.pending += line;
    if (this.pending.length >= this.batchBytes) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushNow);
    }
    return true;
  }

  flush(): void {
    if (this.pending === '') return;
    const lines = this.pending;
    this.pending = '';
    this.sink.write(lines);
  }
}
