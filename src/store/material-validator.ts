import type { SecretMaterial } from './secret-material.js';
import { validateMaterial, type ValidatedMaterial, type ValidationLimits } from './validate-material.js';

/**
 * Runs the store's door (./validate-material.ts) for SecretStore.offer(). The store
 * calls validate() only while fewer than `capacity` calls are unsettled, so an
 * implementation never queues unbounded work; the store holds the rest back, one
 * pending offer per name, and drops superseded ones before they are validated.
 *
 * validate() rejects with an Error carrying the stable `code` (KEY_MISMATCH,
 * CHAIN_ORDER, ...) when the material must not be served; its message never holds
 * key material.
 */
export interface MaterialValidator {
  readonly capacity: number;
  validate(material: SecretMaterial, now: Date, limits: ValidationLimits): Promise<ValidatedMaterial>;
  /** Ends any threads; unsettled validations reject. */
  close(): Promise<void>;
}

/** On the calling thread: for tests, and for `validation.workers: 0`. */
export class InlineValidator implements MaterialValidator {
  readonly capacity = 1;

  validate(material: SecretMaterial, now: Date, limits: ValidationLimits): Promise<ValidatedMaterial> {
    try {
      return Promise.resolve(validateMaterial(material, now, limits));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A rejection that crossed a thread: the code and message of the PkiError behind it. */
export class ValidationRejection extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ValidationRejection';
  }
}
