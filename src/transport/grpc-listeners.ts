import { mkdirSync, readFileSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { LimitsConfig, ServerConfig } from '../config/server-config.js';
import type { Logger } from '../observability/logger.js';
import { addSdsServices } from '../sds/sds-service.js';
import type { StreamDeps } from '../sds/stream-driver.js';

export interface BoundAddresses {
  /** host:port actually bound (port 0 resolved). */
  tcp?: string;
  unix?: string;
}

/**
 * gRPC limits set on purpose: Envoy opens one stream per secret, so a gateway with a
 * thousand certificates holds a thousand streams on one HTTP/2 connection.
 */
export function grpcServerOptions(limits: LimitsConfig): grpc.ServerOptions {
  return {
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    // Node's HTTP/2 session memory cap is in MB; a push to thousands of streams at once
    // is buffered there, and the default (10) would refuse new streams under that load.
    'grpc-node.max_session_memory': 1024,
    // Channelz keeps per-call trackers and timestamps every message: memory and CPU on
    // every one of tens of thousands of long-lived streams, for a debugging service we
    // do not expose.
    'grpc.enable_channelz': 0,
  };
}

/**
 * One gRPC server per listener kind, so a handler knows whether its caller came over
 * TCP, TLS or the Unix socket (the identity depends on it).
 */
export class GrpcListeners {
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
      const host = tcp.address.slice(0, tcp.address.lastIndexOf(':'));
      bound.tcp = `${host}:${port}`;
      this.logger.info({ address: bound.tcp, tls: Boolean(tcp.tls), mtls: Boolean(tcp.tls?.requireClientCert) }, 'SDS listening on TCP');
    }
    if (unix) {
      mkdirSync(dirname(unix.path), { recursive: true });
      if (existsSync(unix.path)) rmSync(unix.path); // a stale socket from a previous run
      const server = this.newServer('unix');
      // The socket's mode is the trust boundary: create it restricted, then set the mode.
      const previous = process.umask(0o177);
      try {
        await bind(server, `unix:${unix.path}`, grpc.ServerCredentials.createInsecure());
      } finally {
        process.umask(previous);
      }
      chmodSync(unix.path, unix.mode);
      bound.unix = unix.path;
      this.logger.info({ path: unix.path, mode: unix.mode.toString(8) }, 'SDS listening on Unix socket');
    }
    return bound;
  }

  /** Stops accepting, then waits up to `drainMs` for calls to end before forcing. */
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

  private newServer(listener: 'tcp' | 'tls' | 'unix'): grpc.Server {
    const server = new grpc.Server(grpcServerOptions(this.config.limits));
    addSdsServices(server, this.deps, listener);
    this.servers.push(server);
    return server;
  }
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}
