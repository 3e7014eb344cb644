import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import {
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type SecureServerOptions,
  type ServerOptions,
} from 'node:http2';
import { Server as NetServer, type AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { LimitsConfig, ServerConfig } from '../config/server-config.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { sdsMethods, type SdsMethod, type UnaryMethod } from '../sds/sds-service.js';
import type { StreamDeps } from '../sds/stream-driver.js';
import { DEFAULT_CONNECTION_POLICY } from './connection-policy.js';
import { connectionBudget } from './descriptor-budget.js';
import { GrpcDispatcher } from './grpc-dispatch.js';
import { HEALTH_CHECK_PATH, healthCheckMethod } from './grpc-health.js';
import { readTlsFiles, TlsFileWatcher } from './tls-files.js';

export interface BoundAddresses {
  /** host:port actually bound (port 0 resolved). */
  tcp?: string;
  unix?: string;
}

/** The stream layer's dependencies, and the connection metrics the edge moves itself. */
export type ListenerDeps = StreamDeps & { metrics: Metrics };

/** The SDS listeners, whichever transport serves them. */
export interface SdsTransport {
  start(): Promise<BoundAddresses>;
  stop(drainMs: number): Promise<void>;
}

/**
 * HTTP/2 settings chosen on purpose. Envoy opens one stream per secret, so a gateway with
 * a thousand certificates holds a thousand streams on one connection.
 */
export function http2Options(limits: LimitsConfig): ServerOptions {
  return {
    settings: { maxConcurrentStreams: limits.maxConcurrentStreams },
    // MB of memory one connection may hold (nghttp2 state and unsent frames) before new
    // streams are refused. A push writes at most one response per stream, so the bound
    // is streams x response size; Node's default of 10 refuses streams under a fan-out.
    maxSessionMemory: 512,
    // Node closes a connection whose client resets more than 1000 streams in a burst.
    // Envoy cancels every SDS stream of a listener at once when it drains it, so the
    // limiter is raised; rapid reset (resets before any request was processed) is counted
    // and bounded per connection by ConnectionPolicy instead.
    streamResetBurst: 100_000,
    streamResetRate: 10_000,
  };
}

type AnyServer = Http2Server | Http2SecureServer;

/**
 * Our gRPC server on node:http2, one HTTP/2 server per listener kind (h2c or TLS on TCP,
 * and the Unix socket), so a call knows which listener its caller came through.
 */
export class SdsListeners implements SdsTransport {
  private readonly servers: Array<{ server: AnyServer; dispatcher: GrpcDispatcher }> = [];
  private tlsWatcher: TlsFileWatcher | undefined;
  private budget: number | undefined;

  constructor(
    private readonly config: ServerConfig,
    private readonly deps: ListenerDeps,
    private readonly logger: Logger,
    /** Readiness for grpc.health.v1 Check on the h2c listener (as HTTP /readyz). */
    private readonly ready: () => boolean = () => true,
  ) {}

  async start(): Promise<BoundAddresses> {
    try {
      return await this.listenAll();
    } catch (err) {
      // Nothing stays listening when one listener cannot bind; the caller sees Node's error.
      await this.closeServers();
      throw err;
    }
  }

  private async listenAll(): Promise<BoundAddresses> {
    const bound: BoundAddresses = {};
    const { tcp, unix } = this.config.grpc;
    // Descriptors kept free for the sources: beyond the budget, new connections are
    // closed as they arrive (counted), and a file can still be opened for a rotation.
    const budget = connectionBudget(this.config.limits.reservedFileDescriptors);
    const listeners = (tcp ? 1 : 0) + (unix ? 1 : 0);
    this.budget = budget === undefined ? undefined : Math.max(1, Math.floor(budget / listeners));
    const options = http2Options(this.config.limits);
    if (tcp) {
      const tls = tcp.tls;
      let server: AnyServer;
      if (tls) {
        const secure: SecureServerOptions = {
          ...options,
          ...readTlsFiles(tls),
          // With a client CA, a presented certificate is verified even when not required;
          // the call then uses it only if it chained (socket.authorized).
          requestCert: Boolean(tls.clientCaFile),
          rejectUnauthorized: tls.requireClientCert,
          allowHTTP1: false,
        };
        const secureServer = createSecureServer(secure);
        this.tlsWatcher = new TlsFileWatcher(tls, (ctx) => secureServer.setSecureContext(ctx), this.logger);
        server = secureServer;
      } else {
        server = createServer(options);
      }
      this.add(server, tls ? 'tls' : 'tcp');
      const { host, port } = splitAddress(tcp.address);
      await listen(server, { host, port }, this.onListenerError);
      this.tlsWatcher?.start();
      const actual = (server.address() as AddressInfo).port;
      bound.tcp = `${host.includes(':') ? `[${host}]` : host}:${actual}`;
      this.logger.info({ address: bound.tcp, tls: Boolean(tls), mtls: Boolean(tls?.requireClientCert) }, 'SDS listening on TCP');
    }
    if (unix) {
      mkdirSync(dirname(unix.path), { recursive: true });
      if (existsSync(unix.path)) rmSync(unix.path); // a stale socket from a previous run
      const server = createServer(options);
      this.add(server, 'unix', unix.path);
      // The socket's mode is the trust boundary: create it restricted, then set the mode.
      const previous = process.umask(0o177);
      try {
        await listen(server, { path: unix.path }, this.onListenerError);
      } finally {
        process.umask(previous);
      }
      chmodSync(unix.path, unix.mode);
      bound.unix = unix.path;
      this.logger.info({ path: unix.path, mode: unix.mode.toString(8) }, 'SDS listening on Unix socket');
    }
    return bound;
  }

  /**
   * Stops accepting, then sends each connection GOAWAY (with the last stream id, so the
   * client knows every stream it opened was seen) and ends its calls with OK, one
   * connection after another over most of `drainMs`: the gateways reconnect to the other
   * replicas spread out, not all in the same second. Whatever is open at `drainMs` is
   * closed.
   */
  async stop(drainMs: number): Promise<void> {
    this.tlsWatcher?.stop();
    const closed = this.closeServers();
    const sessions = this.servers.flatMap(({ dispatcher }) => dispatcher.sessions.map((s) => ({ s, dispatcher })));
    const step = sessions.length > 1 ? (drainMs * 0.8) / (sessions.length - 1) : 0;
    const timers: NodeJS.Timeout[] = [];
    sessions.forEach(({ s, dispatcher }, i) => {
      timers.push(
        setTimeout(() => {
          if (s.closed || s.destroyed) return;
          s.close();
          dispatcher.endCalls(s);
        }, i * step),
      );
    });
    const force = setTimeout(() => {
      for (const { s } of sessions) if (!s.destroyed) s.destroy();
    }, drainMs);
    await closed;
    clearTimeout(force);
    for (const t of timers) clearTimeout(t);
  }

  private readonly onListenerError = (err: NodeJS.ErrnoException): void => {
    this.logger.error({ code: err.code, err: err.message }, 'SDS listener error');
  };

  private add(server: AnyServer, listener: 'tcp' | 'tls' | 'unix', unixPath?: string): void {
    const { limits } = this.config;
    const methods = new Map<string, SdsMethod | UnaryMethod<string>>(sdsMethods(this.deps));
    // Health on h2c only: a kubelet probe presents no certificate.
    if (listener === 'tcp') methods.set(HEALTH_CHECK_PATH, healthCheckMethod(this.ready));
    const dispatcher = new GrpcDispatcher(
      methods,
      {
        listener,
        ...(unixPath ? { unixPath } : {}),
        maxMessageBytes: limits.maxMessageBytes,
        maxUnauthenticatedPerPeer: limits.maxUnauthenticatedConnectionsPerPeer,
        idleTimeoutMs: limits.idleConnectionTimeoutMs,
        policy: { ...DEFAULT_CONNECTION_POLICY, keepaliveTimeMs: limits.keepaliveTimeMs, keepaliveTimeoutMs: limits.keepaliveTimeoutMs },
      },
      this.deps.metrics,
      this.logger,
    );
    if (this.budget !== undefined) {
      // The budget is split between the listeners; net refuses connections past
      // maxConnections before TLS or HTTP/2 spend anything on them.
      server.maxConnections = this.budget;
      server.on('drop', () => {
        this.deps.metrics.connectionsRefused.inc({ reason: 'descriptor_reserve' });
      });
    }
    server.on('session', (session) => dispatcher.onSession(session));
    server.on('stream', (stream, headers) => dispatcher.onStream(stream, headers));
    this.servers.push({ server, dispatcher });
  }

  /** Resolves when every server has stopped and all its connections are gone. */
  private closeServers(): Promise<void> {
    return Promise.all(
      this.servers.map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            if (!server.listening) {
              // Never bound (or already closed): nothing to wait for.
              resolve();
              return;
            }
            // net's close: stop accepting and wait for the connections. Http2Server's own
            // close() would also send GOAWAY to every connection at once.
            NetServer.prototype.close.call(server, () => resolve());
          }),
      ),
    ).then(() => undefined);
  }
}

function listen(
  server: AnyServer,
  where: { host: string; port: number } | { path: string },
  onListenerError: (err: NodeJS.ErrnoException) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(where, () => {
      server.off('error', onError);
      // Errors after binding (accept failing with EMFILE, say) are logged, never thrown:
      // an 'error' event without a listener would end the process and every stream.
      server.on('error', (err: NodeJS.ErrnoException) => onListenerError(err));
      resolve();
    });
  });
}

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(i + 1)) };
}
