// Observation points inside one issuance, for tests and diagnostics: a test can stop the
// engine right after the next key is persisted or an order is placed (a crash), or
// record which ACME order was finalized. A hook that throws fails the attempt; one that
// waits holds the attempt, and the engine's stop() aborts `signal`.

export type IssuanceStep =
  /** The next private key is on disk (before any request that carries it). */
  | 'key-persisted'
  /** A new ACME order was placed and its URL persisted. */
  | 'order-created'
  /** A persisted ACME order was found and continued instead of placing another. */
  | 'order-resumed'
  /** Every challenge of the order is published. */
  | 'challenges-presented'
  /** About to send the CSR (ACME finalize). */
  | 'before-finalize'
  /** The CA returned the certificate. */
  | 'order-finalized'
  /** tls.crt / tls.key / ca.crt are written. */
  | 'persisted';

export interface StepInfo {
  /** `namespace/name` of the Certificate. */
  certificate: string;
  orderUrl?: string;
}

export type StepHook = (step: IssuanceStep, info: StepInfo, signal: AbortSignal) => void | Promise<void>;
