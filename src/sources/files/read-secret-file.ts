import { close as closeCb, constants, fstat as fstatCb, open as openCb, read as readCb, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { FileReadError } from './file-read-error.js';

// Plain descriptors through the callback API: at 100,000 secrets, FileHandle objects
// (created, tracked and closed through promises) cost as much as the I/O itself.
const open = promisify(openCb);
const fstat = promisify(fstatCb);
const close = promisify(closeCb);
const read = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((resolve, reject) => readCb(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));

export interface ReadLimits {
  /** Largest file accepted; checked on the descriptor before reading, and again while reading. */
  maxBytes: number;
  /** A read still running after this long is abandoned (its descriptor closes when it returns). */
  deadlineMs: number;
  /** Aborts the read (shutdown). */
  signal?: AbortSignal;
}

/** Out of descriptors: wait and open again, within the deadline, before giving up. */
const DESCRIPTOR_RETRY_MS = [10, 25, 50, 100, 200, 400];

/**
 * Reads one secret file, safely whatever sits behind the path:
 * - symlinks are followed (Kubernetes `..data` mounts rely on them);
 * - it opens with O_NONBLOCK, so a FIFO with no writer cannot block a thread;
 * - it fstats the open descriptor (not the path: no swap between check and read) and
 *   refuses anything but a regular file, so /dev/zero or a FIFO is never read;
 * - it refuses a size over the limit before reading, and reads at most limit + 1 bytes
 *   in case the file grows meanwhile;
 * - EMFILE/ENFILE on open is retried with backoff; the whole read has a deadline.
 */
export function readSecretFile(path: string, limits: ReadLimits): Promise<Buffer> {
  const { signal } = limits;
  if (signal?.aborted) return Promise.reject(new FileReadError('ABORTED', path, 'file source stopped'));
  const work = readBounded(path, limits);
  return new Promise<Buffer>((resolve, reject) => {
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const timer = setTimeout(() => {
      finish();
      reject(new FileReadError('READ_TIMEOUT', path, `read did not finish within ${limits.deadlineMs} ms`));
    }, limits.deadlineMs);
    const onAbort = () => {
      finish();
      reject(new FileReadError('ABORTED', path, 'file source stopped'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (b) => {
        finish();
        resolve(b);
      },
      (err: unknown) => {
        finish();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

async function readBounded(path: string, limits: ReadLimits): Promise<Buffer> {
  const started = Date.now();
  const fd = await openRetrying(path, () => Date.now() - started < limits.deadlineMs && !limits.signal?.aborted);
  try {
    const st = await fstat(fd);
    if (!st.isFile()) {
      throw new FileReadError('NOT_REGULAR_FILE', path, `not a regular file (${fileType(st)}); only regular files are read`);
    }
    if (st.size > limits.maxBytes) {
      throw new FileReadError('TOO_LARGE', path, `file is ${st.size} bytes; the limit is ${limits.maxBytes}`);
    }
    return await readAtMost(fd, path, st.size, limits);
  } finally {
    await close(fd).catch(() => undefined);
  }
}

async function openRetrying(path: string, mayRetry: () => boolean): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const wait = DESCRIPTOR_RETRY_MS[Math.min(attempt, DESCRIPTOR_RETRY_MS.length - 1)]!;
      if ((code !== 'EMFILE' && code !== 'ENFILE') || !mayRetry()) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Reads until EOF, never more than maxBytes + 1 bytes (one more proves "too large"). */
async function readAtMost(fd: number, path: string, statSize: number, limits: ReadLimits): Promise<Buffer> {
  let buf = Buffer.alloc(Math.min(statSize, limits.maxBytes) + 1);
  let length = 0;
  for (;;) {
    if (limits.signal?.aborted) throw new FileReadError('ABORTED', path, 'file source stopped');
    if (length === buf.length) {
      if (buf.length > limits.maxBytes) {
        throw new FileReadError('TOO_LARGE', path, `file grew past the limit of ${limits.maxBytes} bytes while being read`);
      }
      // The file grew since fstat: make room up to the limit (+1), no further.
      const bigger = Buffer.alloc(Math.min(buf.length * 2, limits.maxBytes + 1));
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    const wanted = buf.length - length;
    const bytesRead = await read(fd, buf, length, wanted, length);
    length += bytesRead;
    // A regular file reads short only at its end: no extra read to see EOF.
    if (bytesRead < wanted) break;
  }
  return Buffer.from(buf.subarray(0, length));
}

function fileType(st: Stats): string {
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSocket()) return 'socket';
  if (st.isDirectory()) return 'directory';
  return 'special file';
}
