import type { CallerIdentity } from '../authz/identity.js';
import type { CallEnd } from './call-end.js';

/** What the driver hears from a call. Methods, not callbacks: a stream holds no closures for them. */
export interface CallEvents<Req> {
  request(req: Req): void;
  /** The client ended its side (it sends no more requests). */
  halfClose(): void;
  /** The stream is gone: reset, connection closed, deadline passed, or ended by us. */
  cancel(): void;
  /** A `write` that returned false has left for the connection: the call takes the next one. */
  drain(): void;
}

/**
 * The narrow view of a bidirectional gRPC call that a stream driver needs, so that
 * sessions and the driver never see which transport carries them.
 *
 * Contracts: `write` takes one encoded response message (the transport frames it) and
 * returns false when the stream's buffer is full, after which `drain` is delivered once;
 * the driver writes nothing more until then. `end` may be called more than once (only
 * the first counts); `cancel` is delivered at most once, also after our own `end`.
 */
export interface StreamCall<Req> {
  listen(events: CallEvents<Req>): void;
  /** One response message, given as parts whose concatenation is the message (see responses.ts). */
  write(message: readonly Buffer[]): boolean;
  /** Ends the call; the transport maps the reason to its status code. */
  end(end: CallEnd): void;
  /** Optional: told once the caller's identity is known (connection limits apply before). */
  authenticated?(identity: CallerIdentity): void;
}
