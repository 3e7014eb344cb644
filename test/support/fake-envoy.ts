// A client that plays Envoy (see shared ENVOY-CLIENT.md), built on the UPSTREAM protos
// shipped in @grpc/grpc-js-xds, so every response is decoded by an independent reference.
//
// A tiny protocol test language, after Istio's SDS tests:
//   const s = envoy.sotw();              // StreamSecrets
//   s.request({ names: ['web'] });       // first request: node, type_url, no nonce
//   const r = await s.response();        // expect a response
//   s.ack(r);                            // ACK it
//   await s.nothing();                   // expect no response
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { upstreamIncludeDirs, lookupUpstreamType } from './envoy-protos.js';

export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

let pkg: grpc.GrpcObject | undefined;
function upstreamPackage(): grpc.GrpcObject {
  pkg ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(['envoy/service/secret/v3/sds.proto', 'envoy/service/discovery/v3/ads.proto'], {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [...upstreamIncludeDirs()],
    }),
  );
  return pkg;
}

function ctor(path: string): grpc.ServiceClientConstructor {
  let o: unknown = upstreamPackage();
  for (const part of path.split('.')) o = (o as Record<string, unknown>)[part];
  return o as grpc.ServiceClientConstructor;
}

/** A Secret as decoded with the upstream protos (plain object, keepCase). */
export interface DecodedSecret {
  name: string;
  type?: string;
  tls_certificate?: { certificate_chain?: DataSourceObj; private_key?: DataSourceObj; ocsp_staple?: DataSourceObj };
  validation_context?: {
    trusted_ca?: DataSourceObj;
    crl?: DataSourceObj;
    match_typed_subject_alt_names?: Array<{ san_type: number; matcher: { exact?: string } }>;
  };
}
export interface DataSourceObj {
  specifier?: string;
  inline_bytes?: Buffer;
  inline_string?: string;
  filename?: string;
}

export interface SotwResponse {
  version_info: string;
  nonce: string;
  type_url: string;
  secrets: DecodedSecret[];
  raw: Record<string, unknown>;
}

export interface DeltaResponse {
  nonce: string;
  type_url: string;
  resources: Array<{ name: string; version: string; secret: DecodedSecret }>;
  removed_resources: string[];
  raw: Record<string, unknown>;
}

export function decodeSecretAny(any: { type_url: string; value: Buffer }): DecodedSecret {
  if (any.type_url !== SECRET_TYPE) throw new Error(`unexpected resource type ${any.type_url}`);
  const T = lookupUpstreamType('envoy.extensions.transport_sockets.tls.v3.Secret');
  return T.toObject(T.decode(any.value), { bytes: Buffer, defaults: false, oneofs: true }) as DecodedSecret;
}

export function pemOf(ds: DataSourceObj | undefined): string {
  if (!ds) return '';
  if (ds.inline_bytes) return Buffer.from(ds.inline_bytes).toString('utf8');
  return ds.inline_string ?? '';
}

export interface FakeEnvoyOptions {
  node?: { id: string; cluster: string };
  credentials?: grpc.ChannelCredentials;
  metadata?: Record<string, string>;
  channelOptions?: grpc.ChannelOptions;
}

/** One Envoy: one channel (one HTTP/2 connection) carrying many streams. */
export class FakeEnvoy {
  readonly node: { id: string; cluster: string };
  private readonly sds: grpc.Client;
  private readonly ads: grpc.Client;
  private readonly streams: Array<{ cancel(): void }> = [];

  constructor(
    target: string,
    private readonly opts: FakeEnvoyOptions = {},
  ) {
    this.node = opts.node ?? { id: 'envoy-test-1', cluster: 'gateway' };
    const creds = opts.credentials ?? grpc.credentials.createInsecure();
    const chOpts = { 'grpc.max_receive_message_length': -1, ...opts.channelOptions };
    this.sds = new (ctor('envoy.service.secret.v3.SecretDiscoveryService'))(target, creds, chOpts);
    // Share the channel, as Envoy shares one connection per SDS cluster.
    this.ads = new (ctor('envoy.service.discovery.v3.AggregatedDiscoveryService'))(target, creds, {
      ...chOpts,
      channelOverride: this.sds.getChannel(),
    });
  }

  private meta(): grpc.Metadata {
    const m = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.opts.metadata ?? {})) m.set(k, v);
    return m;
  }

  sotw(opts: { ads?: boolean } = {}): SotwStream {
    const client = opts.ads ? this.ads : this.sds;
    const method = opts.ads ? 'StreamAggregatedResources' : 'StreamSecrets';
    const call = (client as unknown as Record<string, (m: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown>>)[method]!.call(
      client,
      this.meta(),
    );
    const s = new SotwStream(call, this.node);
    this.streams.push(call);
    return s;
  }

  delta(opts: { ads?: boolean } = {}): DeltaStream {
    const client = opts.ads ? this.ads : this.sds;
    const method = opts.ads ? 'DeltaAggregatedResources' : 'DeltaSecrets';
    const call = (client as unknown as Record<string, (m: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown>>)[method]!.call(
      client,
      this.meta(),
    );
    const s = new DeltaStream(call, this.node);
    this.streams.push(call);
    return s;
  }

  fetch(names: string[], versionInfo = ''): Promise<SotwResponse> {
    return new Promise((resolve, reject) => {
      (this.sds as unknown as Record<string, (...args: unknown[]) => unknown>)['FetchSecrets']!.call(
        this.sds,
        { node: this.node, type_url: SECRET_TYPE, resource_names: names, version_info: versionInfo },
        this.meta(),
        (err: grpc.ServiceError | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(toSotw(res))),
      );
    });
  }

  close(): void {
    for (const s of this.streams) s.cancel();
    this.sds.close();
  }
}

function toSotw(raw: Record<string, unknown>): SotwResponse {
  const resources = (raw['resources'] as Array<{ type_url: string; value: Buffer }>) ?? [];
  return {
    version_info: raw['version_info'] as string,
    nonce: raw['nonce'] as string,
    type_url: raw['type_url'] as string,
    secrets: resources.map(decodeSecretAny),
    raw,
  };
}

/** Collects messages and the end status of a client stream, with awaitable reads. */
class Inbox<T> {
  private readonly queue: T[] = [];
  private waiters: Array<(v: T | undefined) => void> = [];
  status: grpc.StatusObject | undefined;
  error: grpc.ServiceError | undefined;
  private ended = false;
  private endWaiters: Array<() => void> = [];

  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.queue.push(v);
  }
  end(): void {
    this.ended = true;
    for (const w of this.waiters) w(undefined);
    this.waiters = [];
    for (const w of this.endWaiters) w();
    this.endWaiters = [];
  }
  get done(): boolean {
    return this.ended;
  }
  whenEnded(timeoutMs: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`stream did not end within ${timeoutMs} ms`)), timeoutMs);
      this.endWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  next(timeoutMs: number): Promise<T> {
    const v = this.queue.shift();
    if (v !== undefined) return Promise.resolve(v);
    if (this.ended) {
      return Promise.reject(
        new Error(`stream ended (${this.error?.code ?? this.status?.code}: ${this.error?.details ?? ''}) while a response was expected`),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter = (x: T | undefined) => {
        clearTimeout(t);
        if (x === undefined)
          reject(new Error(`stream ended (${this.error?.code}: ${this.error?.details ?? ''}) while a response was expected`));
        else resolve(x);
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
  pending(): number {
    return this.queue.length;
  }
}

abstract class BaseStream<Res> {
  protected readonly inbox = new Inbox<Res>();
  protected sentNode = false;

  constructor(
    readonly call: grpc.ClientDuplexStream<unknown, unknown>,
    protected readonly node: { id: string; cluster: string },
  ) {
    call.on('data', (raw: Record<string, unknown>) => this.inbox.push(this.decode(raw)));
    call.on('error', (err: grpc.ServiceError) => {
      this.inbox.error = err;
      this.inbox.end();
    });
    call.on('status', (s: grpc.StatusObject) => {
      this.inbox.status = s;
    });
    call.on('end', () => this.inbox.end());
  }

  protected abstract decode(raw: Record<string, unknown>): Res;

  /** Expects one response. */
  response(timeoutMs = 5000): Promise<Res> {
    return this.inbox.next(timeoutMs);
  }

  /** Expects no response for `ms` (after the server has had time to process). */
  async nothing(ms = 150): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.inbox.pending() > 0) throw new Error(`expected no response, got ${this.inbox.pending()}`);
  }

  /** Expects the stream to end with an error status; returns it. */
  async closedWith(timeoutMs = 5000): Promise<grpc.ServiceError> {
    await this.inbox.whenEnded(timeoutMs);
    if (!this.inbox.error) throw new Error(`stream ended with status ${this.inbox.status?.code ?? 'OK'}, expected an error`);
    return this.inbox.error;
  }

  get ended(): boolean {
    return this.inbox.done;
  }

  whenEnded(timeoutMs = 5000): Promise<void> {
    return this.inbox.whenEnded(timeoutMs);
  }

  /** Writes a raw request object (upstream field names). */
  write(req: Record<string, unknown>): void {
    this.call.write(req);
  }

  cancel(): void {
    this.call.cancel();
  }
}

export class SotwStream extends BaseStream<SotwResponse> {
  private names: string[] = [];
  private lastAccepted = '';

  protected decode(raw: Record<string, unknown>): SotwResponse {
    return toSotw(raw);
  }

  /** Sends a request like Envoy: node on the first message only, names, type. */
  request(r: {
    names: string[];
    version?: string;
    nonce?: string;
    error?: { code: number; message: string };
    typeUrl?: string;
    node?: boolean;
  }): void {
    this.names = r.names;
    const req: Record<string, unknown> = {
      version_info: r.version ?? this.lastAccepted,
      resource_names: r.names,
      type_url: r.typeUrl ?? SECRET_TYPE,
      response_nonce: r.nonce ?? '',
    };
    if (r.node ?? !this.sentNode) req['node'] = this.node;
    this.sentNode = true;
    if (r.error) req['error_detail'] = r.error;
    this.write(req);
  }

  /** ACK: version_info = the response's version, response_nonce = its nonce. */
  ack(res: SotwResponse, names = this.names): void {
    this.lastAccepted = res.version_info;
    this.request({ names, version: res.version_info, nonce: res.nonce });
  }

  /** NACK: error_detail set, version_info stays the last accepted one (code 13 as Envoy). */
  nack(res: SotwResponse, message = 'Failed to load private key from <inline>'): void {
    this.request({ names: this.names, version: this.lastAccepted, nonce: res.nonce, error: { code: 13, message } });
  }
}

export class DeltaStream extends BaseStream<DeltaResponse> {
  protected decode(raw: Record<string, unknown>): DeltaResponse {
    const resources = (raw['resources'] as Array<Record<string, unknown>>) ?? [];
    return {
      nonce: raw['nonce'] as string,
      type_url: raw['type_url'] as string,
      resources: resources.map((r) => ({
        name: r['name'] as string,
        version: r['version'] as string,
        secret: decodeSecretAny(r['resource'] as { type_url: string; value: Buffer }),
      })),
      removed_resources: (raw['removed_resources'] as string[]) ?? [],
      raw,
    };
  }

  request(r: {
    subscribe?: string[];
    unsubscribe?: string[];
    initial?: Record<string, string>;
    nonce?: string;
    error?: { code: number; message: string };
    typeUrl?: string;
  }): void {
    const req: Record<string, unknown> = {
      type_url: r.typeUrl ?? SECRET_TYPE,
      resource_names_subscribe: r.subscribe ?? [],
      resource_names_unsubscribe: r.unsubscribe ?? [],
      initial_resource_versions: r.initial ?? {},
      response_nonce: r.nonce ?? '',
    };
    if (!this.sentNode) req['node'] = this.node;
    this.sentNode = true;
    if (r.error) req['error_detail'] = r.error;
    this.write(req);
  }

  ack(res: DeltaResponse): void {
    this.request({ nonce: res.nonce });
  }

  nack(res: DeltaResponse, message = 'Failed to load certificate chain from <inline>'): void {
    this.request({ nonce: res.nonce, error: { code: 13, message } });
  }
}
