import { gunzipSync } from 'node:zlib';
import { status as Status } from '@grpc/grpc-js';

/**
 * A gRPC length-prefixed message header (compressed flag, 1 byte; length, 4 bytes, big
 * endian) with the message's first part (a few bytes of the stream's own, its nonce)
 * copied in after it. Its own allocation, not a slice of Node's 8 KB pool: Node keeps the
 * last chunks written on a stream referenced, and a small slice would pin a whole slab
 * per idle stream (measured: 6 KB of ArrayBuffers per stream).
 */
export function framedHead(parts: readonly Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const first = parts[0] ?? EMPTY;
  const h = Buffer.allocUnsafeSlow(5 + first.length);
  h[0] = 0;
  h.writeUInt32BE(length, 1);
  first.copy(h, 5);
  return h;
}

const EMPTY = Buffer.alloc(0);

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
  /** Bytes of an unfinished message; none (no array) between messages, the usual state. */
  private chunks: Buffer[] | undefined;
  private buffered = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly encoding: string | undefined,
  ) {}

  /** Adds a chunk and returns the complete messages it finishes (possibly none). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let rest = chunk;
    if (this.chunks) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < 5) return out;
      const length = this.checkedLength(this.peek(5), 0);
      if (this.buffered < 5 + length) return out;
      // The unfinished message is complete: join what is buffered, go on from there.
      rest = Buffer.concat(this.chunks, this.buffered);
      this.chunks = undefined;
      this.buffered = 0;
    }
    // Whole messages straight from the chunk (a request usually arrives in one DATA frame).
    let o = 0;
    while (rest.length - o >= 5) {
      const length = this.checkedLength(rest, o);
      if (rest.length - o < 5 + length) break;
      out.push(this.decompress(rest[o]!, rest.subarray(o + 5, o + 5 + length)));
      o += 5 + length;
    }
    if (o < rest.length) {
      this.chunks = [o === 0 ? rest : rest.subarray(o)];
      this.buffered = rest.length - o;
    }
    return out;
  }

  /** True when part of a message is still buffered (the body ended mid-message). */
  get partial(): boolean {
    return this.buffered > 0;
  }

  /** The length from a message prefix, refused past the limit before anything is buffered. */
  private checkedLength(buf: Buffer, at: number): number {
    const length = buf.readUInt32BE(at + 1);
    if (length > this.maxMessageBytes) {
      throw new FramingError(Status.RESOURCE_EXHAUSTED, `received message larger than max (${length} vs. ${this.maxMessageBytes})`);
    }
    return length;
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
    const chunks = this.chunks!;
    if (chunks[0]!.length >= n) return chunks[0]!;
    const joined = Buffer.concat(chunks);
    this.chunks = [joined];
    return joined;
  }
}
