import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { status as Status } from '@grpc/grpc-js';
import type { CallerIdentity } from '../authz/identity.js';
import type { CallEnd } from '../sds/call-end.js';
import type { CallEvents, StreamCall } from '../sds/stream-call.js';
import { ACCEPTED_ENCODINGS, FramingError, framedHead, MessageReader } from './grpc-framing.js';
import { encodeGrpcMessage } from './grpc-metadata.js';
import { grpcStatusOf } from './grpc-status.js';

export interface CallOptions {
  maxMessageBytes: number;
  /** The request's `grpc-encoding` (already checked to be one we accept). */
  encoding: string | undefined;
  /** From `grpc-timeout`; the call ends with DEADLINE_EXCEEDED when it passes. */
  timeoutMs: number | undefined;
}

/** The connection a call belongs to. */
export interface CallOwner {
  /** A response was written (keepalive policy: a ping after data is not abuse). */
  noteWrite(): void;
  /** The caller's identity is known (per-peer limits count only connections before this). */
  authenticated(identity: CallerIdentity): void;
  /** The stream closed; `resetByPeer` when it ended with an RST_STREAM error code. */
  closed(call: Http2GrpcCall<unknown>, resetByPeer: boolean): void;
}

/** Response headers; `grpc-status` comes in the trailers (or alone, trailers-only). */
const RESPONSE_HEADERS: OutgoingHttpHeaders = {
  ':status': 200,
  'content-type': 'application/grpc',
  'grpc-accept-encoding': ACCEPTED_ENCODINGS,
};

/**
 * The same headers as raw pairs, for every stream's first response: Node copies a
 * headers object into a new one per response, an array it reads as it is. No `date`:
 * gRPC does not use it (sendDate: false below), and leaving it out keeps this array unchanged.
 */
const RESPONSE_HEADER_PAIRS: string[] = [':status', '200', 'content-type', 'application/grpc', 'grpc-accept-encoding', ACCEPTED_ENCODINGS];
const RESPOND_OPTIONS = { waitForTrailers: true, sendDate: false };

/** A trailers-only response: the status with the headers, no body (immediate errors). */
export function respondTrailersOnly(stream: ServerHttp2Stream, code: Status, message: string, extra: OutgoingHttpHeaders = {}): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    { ...RESPONSE_HEADERS, ...extra, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) },
    { endStream: true },
  );
}

/** The call a stream carries, on the stream itself: its listeners are shared functions, not closures. */
const CALL = Symbol('gRPC call');
type CallStream = ServerHttp2Stream & { [CALL]: Http2GrpcCall<unknown> };

function onStreamData(this: CallStream, chunk: Buffer): void {
  this[CALL].onData(chunk);
}
function onStreamEnd(this: CallStream): void {
  this[CALL].onEnd();
}
function onStreamClose(this: CallStream): void {
  this[CALL].onClose();
}

/**
 * One gRPC call on one HTTP/2 stream: requests are de-framed and decoded in order,
 * responses framed and written as given (the bytes are mostly pre-encoded), the status
 * sent in trailers. Response headers go out with the first response, so an error before
 * any response is a trailers-only response.
 */
export class Http2GrpcCall<Req> implements StreamCall<Req> {
  /** True once a request was handed over: a reset before that is a rapid reset. */
  processed = false;
  private ended = false;
  private cancelled = false;
  private events: CallEvents<Req> | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private readonly reader: MessageReader;
  /** The write callback, made on the first write (a response is unsent until it runs). */
  private onSent: (() => void) | undefined;

  constructor(
    readonly stream: ServerHttp2Stream,
    private readonly decode: (bytes: Buffer) => Req,
    opts: CallOptions,
    private readonly owner: CallOwner,
  ) {
    this.reader = new MessageReader(opts.maxMessageBytes, opts.encoding);
    (stream as CallStream)[CALL] = this;
    // The dispatcher listens for 'error' (errors surface as 'close' with an RST code).
    stream.on('close', onStreamClose);
    if (opts.timeoutMs !== undefined && opts.timeoutMs < 2 ** 31) {
      this.deadline = setTimeout(() => this.endByTransport(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'), opts.timeoutMs);
    }
  }

  listen(events: CallEvents<Req>): void {
    this.events = events;
    this.stream.on('data', onStreamData);
    this.stream.on('end', onStreamEnd);
  }

  /**
   * Writes one response and returns false: the stream counts as full until this response
   * has left for the connection (the write callback, which waits for HTTP/2 flow control),
   * then `drain` is delivered. So a stream holds at most one unsent response, whatever its
   * reader does; the driver only remembers what changed meanwhile and writes the newest
   * versions on drain.
   */
  write(message: readonly Buffer[]): boolean {
    const { stream } = this;
    if (this.ended || stream.destroyed) return true; // gone: 'close' tells the driver
    if (!stream.headersSent) stream.respond(RESPONSE_HEADER_PAIRS, RESPOND_OPTIONS);
    this.owner.noteWrite();
    // The prefix and the stream's own first part (its nonce) in one small buffer, then the
    // shared parts as they are: one writev, and no copy of the secret's bytes per push.
    const last = message.length - 1;
    stream.cork();
    stream.write(framedHead(message), last === 0 ? (this.onSent ??= () => this.events?.drain()) : undefined);
    for (let i = 1; i <= last; i++) stream.write(message[i]!, i === last ? (this.onSent ??= () => this.events?.drain()) : undefined);
    stream.uncork();
    return false;
  }

  authenticated(identity: CallerIdentity): void {
    this.owner.authenticated(identity);
  }

  end(end: CallEnd): void {
    this.endWith(grpcStatusOf(end), end.message);
  }

  /** Ends the call with a status (only the first end counts). */
  endWith(code: Status, message: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.deadline);
    const { stream } = this;
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) {
      respondTrailersOnly(stream, code, message);
      return;
    }
    const trailers: OutgoingHttpHeaders = { 'grpc-status': String(code) };
    if (message) trailers['grpc-message'] = encodeGrpcMessage(message);
    stream.once('wantTrailers', () => {
      // The peer may have reset the stream in between: nothing is left to tell it.
      if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers);
    });
    stream.end();
  }

  /** Ends the call for a reason of the transport's, and tells the driver it is over. */
  endByTransport(code: Status, message: string): void {
    this.endWith(code, message);
    this.fireCancel();
  }

  onData(chunk: Buffer): void {
    if (this.ended) return; // a status was sent: later requests are ignored
    let messages: Buffer[];
    try {
      messages = this.reader.push(chunk);
    } catch (err) {
      if (err instanceof FramingError) this.endByTransport(err.code, err.message);
      else this.endByTransport(Status.INTERNAL, 'invalid request framing');
      return;
    }
    for (const bytes of messages) {
      let req: Req;
      try {
        req = this.decode(bytes);
      } catch {
        this.endByTransport(Status.INTERNAL, 'request does not parse');
        return;
      }
      this.processed = true;
      this.events?.request(req);
      if (this.ended) return;
    }
  }

  onEnd(): void {
    if (this.ended) return;
    if (this.reader.partial) this.endByTransport(Status.INTERNAL, 'request ended inside a message');
    else this.events?.halfClose();
  }

  onClose(): void {
    clearTimeout(this.deadline);
    this.ended = true;
    this.owner.closed(this, this.stream.rstCode !== constants.NGHTTP2_NO_ERROR);
    this.fireCancel();
  }

  private fireCancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.events?.cancel();
  }
}
