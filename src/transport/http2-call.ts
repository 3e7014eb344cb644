import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { status as Status } from '@grpc/grpc-js';
import type { CallerIdentity } from '../authz/identity.js';
import type { CallEvents, StreamCall } from '../sds/stream-call.js';
import { ACCEPTED_ENCODINGS, FramingError, MessageReader, messageHeader } from './grpc-framing.js';
import { encodeGrpcMessage } from './grpc-metadata.js';

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

/** A trailers-only response: the status with the headers, no body (immediate errors). */
export function respondTrailersOnly(stream: ServerHttp2Stream, code: Status, message: string, extra: OutgoingHttpHeaders = {}): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    { ...RESPONSE_HEADERS, ...extra, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) },
    { endStream: true },
  );
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
  /** A response is written but not yet handed to the connection (flow control, slow reader). */
  private unsent = false;
  private drainFn: (() => void) | undefined;

  constructor(
    readonly stream: ServerHttp2Stream,
    private readonly decode: (bytes: Buffer) => Req,
    opts: CallOptions,
    private readonly owner: CallOwner,
  ) {
    this.reader = new MessageReader(opts.maxMessageBytes, opts.encoding);
    // The dispatcher listens for 'error' (errors surface as 'close' with an RST code).
    stream.on('close', () => this.onClose());
    if (opts.timeoutMs !== undefined && opts.timeoutMs < 2 ** 31) {
      this.deadline = setTimeout(() => this.endByTransport(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'), opts.timeoutMs);
    }
  }

  listen(events: CallEvents<Req>): void {
    this.events = events;
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
    this.stream.on('end', () => {
      if (this.ended) return;
      if (this.reader.partial) this.endByTransport(Status.INTERNAL, 'request ended inside a message');
      else events.halfClose();
    });
  }

  /**
   * Writes one response and returns false: the stream counts as full until this response
   * has left for the connection (the write callback, which waits for HTTP/2 flow control).
   * So a stream holds at most one unsent response, whatever its reader does; the driver
   * only remembers what changed meanwhile and writes the newest versions on drain.
   */
  write(message: Buffer): boolean {
    const { stream } = this;
    if (this.ended || stream.destroyed) return true; // gone: 'close' tells the driver
    if (!stream.headersSent) stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    this.owner.noteWrite();
    this.unsent = true;
    // Prefix and message leave in one writev, without copying the message.
    stream.cork();
    stream.write(messageHeader(message.length));
    stream.write(message, this.onSent);
    stream.uncork();
    return false;
  }

  authenticated(identity: CallerIdentity): void {
    this.owner.authenticated(identity);
  }

  onceDrain(fn: () => void): void {
    if (this.unsent) this.drainFn = fn;
    else queueMicrotask(fn);
  }

  private readonly onSent = (): void => {
    this.unsent = false;
    const fn = this.drainFn;
    this.drainFn = undefined;
    fn?.();
  };

  end(code: Status, message?: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.deadline);
    const { stream } = this;
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) {
      respondTrailersOnly(stream, code, message ?? '');
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
    this.end(code, message);
    this.fireCancel();
  }

  private onData(chunk: Buffer): void {
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

  private onClose(): void {
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
