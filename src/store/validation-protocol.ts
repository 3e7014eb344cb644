/**
 * Messages between the validation pool (./validation-pool.ts) and its workers
 * (./validation-worker.ts). Jobs travel in batches: one postMessage per batch, not
 * per secret, keeps the main thread's share of a 10,000-secret rollover small.
 */
import type { SecretMaterial } from './secret-material.js';
import type { ValidatedMaterial, ValidationLimits } from './validate-material.js';

export interface ValidationJob {
  id: number;
  material: SecretMaterial;
  /** Epoch ms: the store's clock, so expiry warnings agree with it. */
  now: number;
  limits: ValidationLimits;
}

export type ValidationOutcome =
  { id: number; ok: true; result: ValidatedMaterial } | { id: number; ok: false; code: string; message: string };

export interface JobBatch {
  jobs: ValidationJob[];
}

export interface OutcomeBatch {
  outcomes: ValidationOutcome[];
}

/** Posted once by a worker that has loaded: a worker that dies before it could not start. */
export interface WorkerReady {
  ready: true;
}

export type WorkerMessage = OutcomeBatch | WorkerReady;
