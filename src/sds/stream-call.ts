import type { status as GrpcStatus } from '@grpc/grpc-js';
import type { CallerIdentity } from '../authz/identity.js';

/** What the driver hears from a call: decoded requests, the client's half-close, the end. */
export interface CallEvents<Req> {
  request(req: Req): void;
  /** The client ended its side (it sends no more requests). */
  halfClose(): void;
  /** The stream is gone: reset, connection closed, deadline passed, or ended by us. */
  cancel(): void;
}

/**
 * The narrow view of a bidirectional gRPC call that a stream driver needs, so that
 * sessions and the driver never see which transport carries them.
 *
 * Contracts: `write` takes one encoded response message (the transport frames it) and
 * returns false when the stream's buffer is full, after which `onceDrain` fires once;
 * the driver writes nothing more until then. `end` may be called more than once (only
 * the first counts); `cancel` is delivered at most once, also after our own `end`.
 */
export interface StreamCall<Req> {
  listen(events: CallEvents<Req>): void;
  write(message: Buffer): boolean;
  onceDrain(fn: () => void): void;
  /** Ends the call with a gRPC status (OK = 0) and an optional message. */
  end(code: GrpcStatus, message?: string): void;
  /** Optional: told once the caller's identity is known (connection limits apply before). */
  authenticated?(identity: CallerIdentity): void;
}
