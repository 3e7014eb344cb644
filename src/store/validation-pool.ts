import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/logger.js';
import { InlineValidator, ValidationRejection, type MaterialValidator } from './material-validator.js';
import type { SecretMaterial } from './secret-material.js';
import type { ValidatedMaterial, ValidationLimits } from './validate-material.js';
import type { JobBatch, ValidationJob, WorkerMessage } from './validation-protocol.js';

/**
 * One worker per core but the one the event loop needs; at least one, at most four:
 * each worker holds its own V8 heap (about 28 MB of RSS), availableParallelism() counts
 * the node's cores, not a container's CPU quota, and the event loop, which applies and
 * pushes every result, is the limit beyond a few workers.
 */
export const MAX_DEFAULT_WORKERS = 4;

export function defaultValidationWorkers(): number {
  return Math.max(1, Math.min(availableParallelism() - 1, MAX_DEFAULT_WORKERS));
}

export interface ValidationPoolOptions {
  workers: number;
  logger: Logger;
  /** Jobs per message to a worker. */
  batchSize?: number;
  /** Batches a worker holds at once: two keep it busy while results travel back. */
  batchesPerWorker?: number;
  /** The worker script; tests point it elsewhere. */
  workerUrl?: URL;
  /** A worker idle this long ends (its memory back to the system); 0 keeps workers. Default 60 s. */
  idleMs?: number;
}

/** Workers that fail to start this many times in a row: validate on the event loop instead. */
const MAX_FAILED_STARTS = 3;
/** A job in flight on this many workers that died is refused (it may be what kills them). */
const MAX_ATTEMPTS = 2;

interface Pending {
  job: ValidationJob;
  resolve: (r: ValidatedMaterial) => void;
  reject: (e: Error) => void;
  /** Workers that died while holding it. */
  attempts: number;
}

interface Slot {
  worker: Worker;
  /** Jobs sent and not yet answered, by id. */
  busy: Map<number, Pending>;
  batches: number;
  /** The worker has loaded (it said so). */
  ready: boolean;
  idleTimer?: NodeJS.Timeout;
}

/**
 * The store's door off the event loop: a fixed set of worker threads
 * (node:worker_threads) running ./validation-worker.ts. Jobs go out in batches to the
 * least busy worker; `capacity` (workers x batch x batches per worker) bounds what is
 * in flight, and the store holds back the rest. A worker that dies is replaced and its
 * jobs go to the next one; a job in flight on two workers that died is refused
 * (VALIDATOR_FAILED: logged as a rejection, the source offers again on its next change
 * or resync). When workers cannot start at all, the pool validates on the event loop.
 *
 * Workers start on demand (a constructor does no I/O), hold the process open only
 * while they have work, and end after a minute without any: between rollovers the
 * pool costs no memory.
 */
export class ValidationPool implements MaterialValidator {
  readonly capacity: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly batchSize: number;
  private readonly batchesPerWorker: number;
  private nextId = 1;
  private closed = false;
  /** Workers that died before they were ready, since one last was. */
  private failedStarts = 0;
  /** Set when workers cannot run here: availability first, on the event loop. */
  private fallback: InlineValidator | undefined;

  constructor(private readonly opts: ValidationPoolOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new Error('a validation pool needs at least one worker');
    this.batchSize = opts.batchSize ?? 32;
    this.batchesPerWorker = opts.batchesPerWorker ?? 2;
    this.capacity = opts.workers * this.batchSize * this.batchesPerWorker;
  }

  get workers(): number {
    return this.opts.workers;
  }

  validate(material: SecretMaterial, now: Date, limits: ValidationLimits): Promise<ValidatedMaterial> {
    if (this.closed) return Promise.reject(new ValidationRejection('VALIDATOR_CLOSED', 'the validation pool is closed'));
    if (this.fallback) return this.fallback.validate(material, now, limits);
    while (this.slots.length < this.opts.workers) this.slots.push(this.spawn());
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, material, now: now.getTime(), limits }, resolve, reject, attempts: 0 });
      // Jobs offered in the same tick leave together, in as few messages as possible.
      if (this.queue.length === 1) queueMicrotask(() => this.dispatch());
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    for (const p of this.queue.splice(0)) p.reject(new ValidationRejection('VALIDATOR_CLOSED', 'the validation pool is closed'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot: Slot | undefined;
      for (const s of this.slots) {
        if (s.batches < this.batchesPerWorker && (!slot || s.busy.size < slot.busy.size)) slot = s;
      }
      if (!slot) return; // every worker is full: the next answer dispatches again
      const batch = this.queue.splice(0, this.batchSize);
      for (const p of batch) slot.busy.set(p.job.id, p);
      clearTimeout(slot.idleTimer);
      if (slot.batches++ === 0) slot.worker.ref(); // awaited work keeps the process alive
      slot.worker.postMessage({ jobs: batch.map((p) => p.job) } satisfies JobBatch);
    }
  }

  /** Workers that exist now (they start on demand and end when idle). */
  get liveWorkers(): number {
    return this.slots.length;
  }

  /** Ends `slot`'s worker if it stays idle for idleMs: workers cost memory, and rollovers are rare. */
  private idleFrom(slot: Slot): void {
    const idleMs = this.opts.idleMs ?? 60_000;
    if (idleMs <= 0) return;
    clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      const i = this.slots.indexOf(slot);
      if (i < 0 || slot.batches > 0) return;
      this.slots.splice(i, 1); // before terminate: its exit is then not a failure
      void slot.worker.terminate();
    }, idleMs);
    slot.idleTimer.unref();
  }

  /** Workers keep dying: validate on the event loop from now on, loudly, rather than not at all. */
  private fallBackInline(): void {
    this.opts.logger.error(
      { failedStarts: this.failedStarts },
      'validation workers cannot start; validating on the event loop from now on',
    );
    const fallback = new InlineValidator();
    this.fallback = fallback;
    const slots = this.slots.splice(0);
    const unanswered = [...slots.flatMap((s) => [...s.busy.values()]), ...this.queue.splice(0)];
    for (const s of slots) void s.worker.terminate();
    for (const p of unanswered) {
      fallback.validate(p.job.material, new Date(p.job.now), p.job.limits).then(p.resolve, p.reject);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(this.opts.workerUrl ?? new URL('./validation-worker.js', import.meta.url));
    worker.unref();
    const slot: Slot = { worker, busy: new Map(), batches: 0, ready: false };
    this.idleFrom(slot);
    worker.on('message', (msg: WorkerMessage) => {
      if ('ready' in msg) {
        slot.ready = true;
        this.failedStarts = 0;
        return;
      }
      if (--slot.batches === 0) {
        slot.worker.unref();
        this.idleFrom(slot);
      }
      for (const o of msg.outcomes) {
        const p = slot.busy.get(o.id);
        if (!p) continue;
        slot.busy.delete(o.id);
        if (o.ok) p.resolve(o.result);
        else p.reject(new ValidationRejection(o.code, o.message));
      }
      this.dispatch();
    });
    worker.on('error', (err: Error) => {
      this.opts.logger.error({ err: err.message }, 'validation worker failed; replacing it');
    });
    worker.on('exit', () => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return; // closed
      if (!slot.ready && ++this.failedStarts >= MAX_FAILED_STARTS) {
        this.fallBackInline();
        return;
      }
      // Its jobs go to the next worker, unless they were on a worker that died before.
      const again: Pending[] = [];
      for (const p of slot.busy.values()) {
        if (slot.ready && ++p.attempts >= MAX_ATTEMPTS) {
          p.reject(new ValidationRejection('VALIDATOR_FAILED', 'validation workers stopped twice while validating this update'));
        } else again.push(p);
      }
      this.queue.unshift(...again);
      this.slots[i] = this.spawn();
      this.dispatch();
    });
    return slot;
  }
}
