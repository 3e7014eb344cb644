import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { PeerInfo } from '../authz/authorizer.js';
import { clientCertificateFromDer } from '../authz/peer-certificate.js';
import type { LimitsConfig, ServerConfig } from '../config/server-config.js';
import type { Logger } from '../observability/logger.js';
import { isCallEnd, type CallEnd } from '../sds/call-end.js';
import { sdsPackageDefinition } from '../sds/protos.js';
import { ADS_SERVICE, SDS_SERVICE, sdsMethods, type SdsMethod } from '../sds/sds-service.js';
import type { DiscoveryRequest } from '../sds/messages.js';
import type { CallEvents, StreamCall } from '../sds/stream-call.js';
import type { StreamDeps } from '../sds/stream-driver.js';
import { grpcStatusOf } from './grpc-status.js';
import type { BoundAddresses, SdsTransport } from './sds-listeners.js';

/**
 * The @grpc/grpc-js server, kept only so the benchmark can compare it with our own
 * transport (bench/node-peer.ts --transport grpc-js). Production uses SdsListeners.
 */
export function grpcServerOptions(limits: LimitsConfig): grpc.ServerOptions {
  return {
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    'grpc-node.max_session_memory': 1024,
    'grpc.enable_channelz': 0,
  };
}

/** A grpc-js duplex stream seen through the driver's narrow interface. */
class GrpcJsCall<Req> implements StreamCall<Req> {
  constructor(private readonly call: grpc.ServerDuplexStream<Req, Buffer>) {}

  listen(events: CallEvents<Req>): void {
    this.events = events;
    let gone = false;
    const cancel = (): void => {
      if (gone) return;
      gone = true;
      events.cancel();
    };
    this.call.on('data', (req: Req) => events.request(req));
    this.call.on('end', () => events.halfClose());
    this.call.on('error', cancel);
    this.call.on('cancelled', cancel);
    this.call.on('close', cancel);
  }

  private events: CallEvents<Req> | undefined;

  write(message: readonly Buffer[]): boolean {
    if (this.call.write(Buffer.concat(message))) return true;
    this.call.once('drain', () => this.events?.drain());
    return false;
  }

  end(end: CallEnd): void {
    const code = grpcStatusOf(end);
    if (code === grpc.status.OK) this.call.end();
    else this.call.emit('error', Object.assign(new Error(end.message), { code, details: end.message }));
  }
}

function peerInfo(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  listener: PeerInfo['listener'],
): PeerInfo {
  const peer: PeerInfo = { address: call.getPeer(), listener };
  const auth = call.metadata.get('authorization')[0];
  if (typeof auth === 'string') peer.authorization = auth;
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (cert?.raw) peer.clientCertificate = clientCertificateFromDer(cert.raw);
  return peer;
}

/** grpc-js service definitions whose response serializer passes pre-encoded bytes through. */
function serviceDefinition(name: string): grpc.ServiceDefinition {
  const def = sdsPackageDefinition()[name] as grpc.ServiceDefinition;
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [method, m] of Object.entries(def)) {
    const original = m.responseSerialize;
    out[method] = { ...m, responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : original(v)) };
  }
  return out;
}

function handler(method: SdsMethod, listener: PeerInfo['listener'], logger: Logger): grpc.UntypedHandleCall {
  if (method.kind === 'streaming') {
    return (call: grpc.ServerDuplexStream<unknown, Buffer>) => method.serve(new GrpcJsCall(call), peerInfo(call, listener));
  }
  return (call: grpc.ServerUnaryCall<DiscoveryRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
    method.serve(call.request, peerInfo(call, listener)).then(
      (result) => (isCallEnd(result) ? callback({ code: grpcStatusOf(result), details: result.message }) : callback(null, result)),
      (err: unknown) => {
        logger.error({ rpc: 'FetchSecrets', err }, 'fetch failed');
        callback({ code: grpc.status.INTERNAL, details: 'internal error' });
      },
    );
  };
}

export class GrpcJsListeners implements SdsTransport {
  private readonly servers: grpc.Server[] = [];

  constructor(
    private readonly config: ServerConfig,
    private readonly deps: StreamDeps,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<BoundAddresses> {
    const bound: BoundAddresses = {};
    const { tcp, unix } = this.config.grpc;
    if (tcp) {
      const server = this.newServer(tcp.tls ? 'tls' : 'tcp');
      const creds = tcp.tls
        ? grpc.ServerCredentials.createSsl(
            tcp.tls.clientCaFile ? readFileSync(tcp.tls.clientCaFile) : null,
            [{ cert_chain: readFileSync(tcp.tls.certFile), private_key: readFileSync(tcp.tls.keyFile) }],
            tcp.tls.requireClientCert,
          )
        : grpc.ServerCredentials.createInsecure();
      const port = await bind(server, tcp.address, creds);
      bound.tcp = `${tcp.address.slice(0, tcp.address.lastIndexOf(':'))}:${port}`;
    }
    if (unix) {
      mkdirSync(dirname(unix.path), { recursive: true });
      if (existsSync(unix.path)) rmSync(unix.path);
      const server = this.newServer('unix');
      const previous = process.umask(0o177);
      try {
        await bind(server, `unix:${unix.path}`, grpc.ServerCredentials.createInsecure());
      } finally {
        process.umask(previous);
      }
      chmodSync(unix.path, unix.mode);
      bound.unix = unix.path;
    }
    this.logger.info({ ...bound }, 'SDS listening (grpc-js transport, for comparison)');
    return bound;
  }

  async stop(drainMs: number): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            const force = setTimeout(() => {
              s.forceShutdown();
              resolve();
            }, drainMs);
            s.tryShutdown(() => {
              clearTimeout(force);
              resolve();
            });
          }),
      ),
    );
  }

  private newServer(listener: PeerInfo['listener']): grpc.Server {
    const server = new grpc.Server(grpcServerOptions(this.config.limits));
    const methods = sdsMethods(this.deps);
    for (const service of [SDS_SERVICE, ADS_SERVICE]) {
      const impl: grpc.UntypedServiceImplementation = {};
      for (const [path, method] of methods) {
        if (path.startsWith(`/${service}/`)) impl[path.slice(service.length + 2)] = handler(method, listener, this.logger);
      }
      server.addService(serviceDefinition(service), impl);
    }
    this.servers.push(server);
    return server;
  }
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}
