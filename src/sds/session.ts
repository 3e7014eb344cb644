import type { StoredSecret } from '../store/secret-material.js';
import type { Rejection } from './request-checks.js';
import type { ResponseParts } from './responses.js';
import type { NackRecord, StreamStatus } from './stream-status.js';

/** A request taken: what the driver does next. */
export interface Accepted {
  type: 'accept';
  /** Delta: the nonce was not one we sent (subscription changes still apply). */
  stale: boolean;
  ack: boolean;
  nack: NackRecord | undefined;
  /** Names to authorize, watch and send (only what `needsPush` says goes out). */
  added: string[];
  /** Names the stream no longer holds: stop watching them. */
  removed: string[];
}

/** SotW: a request answering an older response is ignored whole; the client sends a newer one. */
export interface Stale {
  type: 'stale';
}

export type RequestOutcome = Rejection | Stale | Accepted;

/**
 * The protocol half of a stream (SotwSession or DeltaSession): no I/O and no clock of
 * its own. The driver feeds it requests and store changes and writes what it builds.
 */
export interface Session<Req> {
  readonly status: StreamStatus;
  onRequest(req: Req): RequestOutcome;
  /** Push only on change: whether this version must go to the stream. */
  needsPush(secret: StoredSecret): boolean;
  /** Whether a deleted name must be announced (delta only, and only if it was sent). */
  needsRemoval(name: string): boolean;
  /** The response carrying these secrets (and removals), recorded as sent. */
  buildResponse(secrets: readonly StoredSecret[], removed: readonly string[]): ResponseParts;
  /** Marks a name refused by authorization: it is never sent on this stream. */
  deny(name: string): void;
  /** Lifts a denial once authorization allows the name again. */
  allow(name: string): void;
  isSubscribed(name: string): boolean;
  /** The stream ended: releases what it held (its names' count for the identity). */
  close(): void;
}
