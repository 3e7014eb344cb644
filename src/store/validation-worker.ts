/**
 * A validation worker thread: runs the store's door on batches of jobs and posts the
 * outcomes back. Each worker keeps its own caches (parsed CA certificates), so a
 * rollover's shared intermediate is parsed once per worker.
 */
import { parentPort } from 'node:worker_threads';
import { lowerThisThreadPriority, VALIDATION_NICE } from './background-priority.js';
import { validateMaterial } from './validate-material.js';
import type { JobBatch, OutcomeBatch, ValidationOutcome, WorkerReady } from './validation-protocol.js';

const port = parentPort;
if (!port) throw new Error('validation-worker.js runs as a worker thread only');
lowerThisThreadPriority(VALIDATION_NICE);

port.on('message', (batch: JobBatch) => {
  const outcomes: ValidationOutcome[] = batch.jobs.map((job) => {
    try {
      return { id: job.id, ok: true, result: validateMaterial(job.material, new Date(job.now), job.limits) };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // PkiError messages never hold key material (src/pki/errors.ts); anything else
      // is reported by its class only, in case it quotes its input.
      return typeof code === 'string' && err instanceof Error
        ? { id: job.id, ok: false, code, message: err.message }
        : { id: job.id, ok: false, code: 'INVALID', message: `validation failed (${err instanceof Error ? err.name : typeof err})` };
    }
  });
  port.postMessage({ outcomes } satisfies OutcomeBatch);
});
port.postMessage({ ready: true } satisfies WorkerReady);
