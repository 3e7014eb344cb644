import { gunzipSync } from 'node:zlib';
import { status as Status } from '@grpc/grpc-js';

/**
 * A gRPC length-prefixed message header: compressed flag (1 byte), length (4 bytes, big
 * endian). Its own allocation, not a slice of Node's 8 KB pool: Node keeps the last chunks
 * written on a stream referenced, and a 5-byte slice would pin a whole slab per idle
 * stream (measured: 6 KB of ArrayBuffers per stream when secrets are encoded in between).
 */
export function messageHeader(length: number): Buffer {
  const h = Buffer.allocUnsafeSlow(5);
  h[0] = 0;
  h.writeUInt32BE(length, 1);
  return h;
}

/** Request encodings we accept (the `grpc-encoding` header); anything else is UNIMPLEMENTED. */
export const ACCEPTED_ENCODINGS = 'identity,gzip';

export function acceptsEncoding(encoding: string | undefined): boolean {
  return encoding === undefined || encoding === 'identity' || encoding === 'gzip';
}

export class FramingError extends Error {
  constructor(
    readonly code: Status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Splits the request body into gRPC messages. A length over the limit is refused from the
 * 5-byte prefix alone, before any of the message is buffered.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly encoding: string | undefined,
  ) {}

  /** Adds a chunk and returns the complete messages it finishes (possibly none). */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    while (this.buffered >= 5) {
      const head = this.peek(5);
      const compressed = head[0]!;
      const length = head.readUInt32BE(1);
      if (length > this.maxMessageBytes) {
        throw new FramingError(Status.RESOURCE_EXHAUSTED, `received message larger than max (${length} vs. ${this.maxMessageBytes})`);
      }
      if (this.buffered < 5 + length) break;
      const frame = this.take(5 + length);
      out.push(this.decompress(compressed, frame.subarray(5)));
    }
    return out;
  }

  /** True when part of a message is still buffered (the body ended mid-message). */
  get partial(): boolean {
    return this.buffered > 0;
  }

  private decompress(flag: number, body: Buffer): Buffer {
    if (flag === 0) return body;
    if (flag !== 1) throw new FramingError(Status.INTERNAL, `invalid compressed flag ${flag}`);
    if (this.encoding !== 'gzip') {
      // The spec: a compressed message without a negotiated encoding is a protocol error.
      throw new FramingError(Status.INTERNAL, 'compressed message without grpc-encoding');
    }
    try {
      return gunzipSync(body, { maxOutputLength: this.maxMessageBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new FramingError(Status.RESOURCE_EXHAUSTED, `decompressed message larger than max (${this.maxMessageBytes})`);
      }
      throw new FramingError(Status.INTERNAL, 'invalid gzip message');
    }
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}
