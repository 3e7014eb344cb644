// A gRPC client written on node:http2 by hand, to test the server's wire rules where a
// gRPC library would hide them (headers, trailers-only, framing, resets, window sizes).
import {
  connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type Settings,
} from 'node:http2';
import { gzipSync } from 'node:zlib';
import { decodeSecretAny, SECRET_TYPE, type DecodedSecret } from './fake-envoy.js';
import { lookupUpstreamType } from './envoy-protos.js';

export const STREAM_SECRETS = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';
export const FETCH_SECRETS = '/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets';

export function discoveryRequest(names: string[], fields: { nonce?: string; version?: string; typeUrl?: string } = {}): Buffer {
  const T = lookupUpstreamType('envoy.service.discovery.v3.DiscoveryRequest');
  return Buffer.from(
    T.encode(
      T.fromObject({
        node: { id: 'raw-1', cluster: 'raw' },
        type_url: fields.typeUrl ?? SECRET_TYPE,
        resource_names: names,
        response_nonce: fields.nonce ?? '',
        version_info: fields.version ?? '',
      }),
    ).finish(),
  );
}

export interface Response {
  version_info: string;
  nonce: string;
  secrets: DecodedSecret[];
}

export function decodeResponse(bytes: Buffer): Response {
  const T = lookupUpstreamType('envoy.service.discovery.v3.DiscoveryResponse');
  const o = T.toObject(T.decode(bytes), { defaults: true, bytes: Buffer }) as {
    version_info: string;
    nonce: string;
    resources: Array<{ type_url: string; value: Buffer }>;
  };
  return { version_info: o.version_info, nonce: o.nonce, secrets: o.resources.map(decodeSecretAny) };
}

/** One gRPC message: flag byte, big-endian length, body. */
export function frame(body: Buffer, compressed = false): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
}

export function gzipFrame(body: Buffer): Buffer {
  return frame(gzipSync(body), true);
}

export function grpcHeaders(path: string, extra: OutgoingHttpHeaders = {}): OutgoingHttpHeaders {
  return { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra };
}

export class RawConnection {
  readonly session: ClientHttp2Session;
  goaway: { code: number; lastStreamID: number; debug: string } | undefined;

  constructor(url: string, settings: Settings = {}) {
    // Thousands of streams on one connection: allow the client the memory for them.
    this.session = connect(url, { settings, maxSessionMemory: 1024 });
    this.session.on('error', () => {});
    this.session.on('goaway', (code, lastStreamID, data) => {
      this.goaway = { code, lastStreamID, debug: data?.toString() ?? '' };
    });
  }

  /** `paused`: read nothing until resume(), so HTTP/2 flow control holds the server back. */
  open(path: string, extra: OutgoingHttpHeaders = {}, opts: { paused?: boolean } = {}): RawStream {
    return new RawStream(this.session.request(grpcHeaders(path, extra)), opts.paused ?? false);
  }

  close(): void {
    this.session.destroy();
  }
}

/** One call: collects response headers, messages and trailers as they come. */
export class RawStream {
  headers: IncomingHttpHeaders | undefined;
  trailers: IncomingHttpHeaders | undefined;
  /** True when the status came with the response headers (no body, no trailers). */
  trailersOnly = false;
  closed = false;
  readonly messages: Buffer[] = [];
  private buffered = Buffer.alloc(0);
  private readonly waiters: Array<() => void> = [];

  constructor(
    readonly stream: ClientHttp2Stream,
    paused = false,
  ) {
    stream.on('error', () => {});
    stream.on('response', (h, flags) => {
      this.headers = h;
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) this.trailersOnly = true;
      this.wake();
    });
    stream.on('trailers', (t) => {
      this.trailers = t;
      this.wake();
    });
    if (!paused) this.resume();
    stream.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Starts reading response data. */
  resume(): void {
    this.stream.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 5) {
        const len = this.buffered.readUInt32BE(1);
        if (this.buffered.length < 5 + len) break;
        this.messages.push(this.buffered.subarray(5, 5 + len));
        this.buffered = this.buffered.subarray(5 + len);
      }
      this.wake();
    });
  }

  send(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  request(names: string[], fields: { nonce?: string; version?: string; typeUrl?: string } = {}): void {
    this.send(frame(discoveryRequest(names, fields)));
  }

  /** The gRPC status, from the trailers or from a trailers-only response. */
  get status(): { code: number; message: string } | undefined {
    const src = this.trailersOnly ? this.headers : this.trailers;
    const code = src?.['grpc-status'];
    if (code === undefined) return undefined;
    return { code: Number(code), message: String(src?.['grpc-message'] ?? '') };
  }

  async until(fn: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!fn()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async response(index: number, timeoutMs = 5000): Promise<Response> {
    await this.until(() => this.messages.length > index, timeoutMs, `response #${index}`);
    return decodeResponse(this.messages[index]!);
  }

  async ended(timeoutMs = 5000): Promise<{ code: number; message: string }> {
    await this.until(() => this.status !== undefined || this.closed, timeoutMs, 'the call to end');
    const s = this.status;
    if (!s) throw new Error(`stream closed without a gRPC status (rst ${this.stream.rstCode})`);
    return s;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
