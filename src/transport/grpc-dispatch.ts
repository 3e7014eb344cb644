import { constants, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { status as Status } from '@grpc/grpc-js';
import type { PeerInfo } from '../authz/authorizer.js';
import { clientCertificateFromDer } from '../authz/peer-certificate.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { isCallEnd } from '../sds/call-end.js';
import type { SdsMethod, UnaryMethod } from '../sds/sds-service.js';
import type { CallerIdentity } from '../authz/identity.js';
import { ConnectionPolicy, type ConnectionPolicyOptions } from './connection-policy.js';
import { ACCEPTED_ENCODINGS, acceptsEncoding } from './grpc-framing.js';
import { isGrpcContentType, parseGrpcTimeout } from './grpc-metadata.js';
import { grpcStatusOf } from './grpc-status.js';
import { Http2GrpcCall, respondTrailersOnly, type CallOwner } from './http2-call.js';

type Listener = PeerInfo['listener'];

export interface DispatchOptions {
  listener: Listener;
  /** For the Unix listener: the socket path, as the peer address. */
  unixPath?: string;
  maxMessageBytes: number;
  policy: ConnectionPolicyOptions;
  /** Connections one peer address may hold before a stream on them authenticated. */
  maxUnauthenticatedPerPeer: number;
  /** A connection without an open stream for this long gets GOAWAY. */
  idleTimeoutMs: number;
}

/** What a connection knows once, for all its streams. */
class Connection implements CallOwner {
  readonly calls = new Set<Http2GrpcCall<unknown>>();
  /** The peer address counted against the per-peer limit until a stream authenticates. */
  unauthenticatedKey: string | undefined;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly session: Http2Session,
    /** What every stream on this connection presents, unless it sends its own `authorization`. */
    readonly peer: Readonly<PeerInfo>,
    readonly policy: ConnectionPolicy,
    private readonly onAuthenticated: (conn: Connection) => void,
    private readonly onIdle: (conn: Connection) => void,
  ) {}

  noteWrite(): void {
    this.policy.noteWrite();
  }

  closed(call: Http2GrpcCall<unknown>, resetByPeer: boolean): void {
    this.calls.delete(call);
    if (this.calls.size === 0) this.onIdle(this);
    // Reset by the client before any request was processed: the rapid-reset pattern.
    if (resetByPeer && !call.processed && !this.session.destroyed) this.policy.noteRapidReset();
  }

  authenticated(identity: CallerIdentity): void {
    if (this.unauthenticatedKey !== undefined && identity.kind !== 'anonymous') this.onAuthenticated(this);
  }
}

/**
 * Routes HTTP/2 streams to the gRPC methods: checks the request headers, builds the
 * call, and keeps per-connection state (peer identity, policy, open calls) so that
 * a drain can end one connection's calls at a time.
 */
export class GrpcDispatcher {
  private readonly connections = new Map<Http2Session, Connection>();
  /** Peer address -> its connections on which nothing has authenticated yet. */
  private readonly unauthenticated = new Map<string, number>();

  constructor(
    private readonly methods: Map<string, SdsMethod | UnaryMethod<string>>,
    private readonly opts: DispatchOptions,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  get sessions(): Http2Session[] {
    return [...this.connections.keys()];
  }

  /** Ends the calls of one connection with OK (after its GOAWAY): the clients reconnect. */
  endCalls(session: Http2Session): void {
    const conn = this.connections.get(session);
    if (!conn) return;
    for (const call of conn.calls) call.endByTransport(Status.OK, '');
  }

  onSession(session: Http2Session): void {
    session.on('error', (err) => this.logger.debug({ err: err.message }, 'HTTP/2 connection error'));
    const socket = session.socket;
    let address: string;
    const host = socket.remoteAddress ?? '';
    if (this.opts.listener === 'unix') address = `unix:${this.opts.unixPath ?? ''}`;
    else address = host.includes(':') ? `[${host}]:${socket.remotePort}` : `${host}:${socket.remotePort}`;
    let clientCertificate: PeerInfo['clientCertificate'];
    const tlsSocket = socket as Partial<TLSSocket>;
    // Only a certificate that chained to the client CA is an identity.
    if (this.opts.listener === 'tls' && tlsSocket.authorized && tlsSocket.getPeerCertificate) {
      const raw = tlsSocket.getPeerCertificate(false).raw;
      if (raw && raw.length > 0) clientCertificate = clientCertificateFromDer(raw);
    }
    // Before authentication a peer address may hold only so many connections: idle
    // connections from one place cannot take every descriptor. A verified client
    // certificate authenticates the connection itself; the Unix socket's mode is its gate.
    let unauthenticatedKey: string | undefined;
    if (this.opts.listener !== 'unix' && !clientCertificate) {
      const held = this.unauthenticated.get(host) ?? 0;
      if (held >= this.opts.maxUnauthenticatedPerPeer) {
        this.metrics.connectionsRefused.inc({ reason: 'unauthenticated_per_peer' });
        this.logger.warn(
          { peer: host, limit: this.opts.maxUnauthenticatedPerPeer },
          'refusing connection: too many unauthenticated connections from this peer',
        );
        session.destroy(undefined, constants.NGHTTP2_ENHANCE_YOUR_CALM);
        return;
      }
      this.unauthenticated.set(host, held + 1);
      unauthenticatedKey = host;
    }
    const policy = new ConnectionPolicy(session, this.opts.policy, this.metrics, this.logger);
    policy.start();
    const peer: PeerInfo = { address, listener: this.opts.listener };
    if (clientCertificate) peer.clientCertificate = clientCertificate;
    const conn = new Connection(
      session,
      peer,
      policy,
      (c) => this.release(c),
      (c) => this.armIdle(c),
    );
    conn.unauthenticatedKey = unauthenticatedKey;
    this.connections.set(session, conn);
    this.armIdle(conn);
    session.once('close', () => {
      clearTimeout(conn.idleTimer);
      this.release(conn);
      this.connections.delete(session);
    });
  }

  /** The connection no longer counts against its peer's unauthenticated limit. */
  private release(conn: Connection): void {
    const key = conn.unauthenticatedKey;
    if (key === undefined) return;
    conn.unauthenticatedKey = undefined;
    const held = (this.unauthenticated.get(key) ?? 1) - 1;
    if (held <= 0) this.unauthenticated.delete(key);
    else this.unauthenticated.set(key, held);
  }

  /** Only a connection with no open stream can time out: SDS streams idle for days. */
  private armIdle(conn: Connection): void {
    clearTimeout(conn.idleTimer);
    if (conn.calls.size > 0) return;
    conn.idleTimer = setTimeout(() => {
      const { session } = conn;
      if (session.closed || session.destroyed || conn.calls.size > 0) return;
      this.metrics.connectionsRefused.inc({ reason: 'idle' });
      session.close();
      setTimeout(() => session.destroy(), 1000).unref();
    }, this.opts.idleTimeoutMs);
    conn.idleTimer.unref();
  }

  onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', ignore);
    const conn = this.connections.get(stream.session!);
    if (!conn) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (headers[':method'] !== 'POST') {
      respondTrailersOnly(stream, Status.UNIMPLEMENTED, 'gRPC requires POST', { ':status': 405 });
      return;
    }
    if (!isGrpcContentType(headers['content-type'])) {
      // Not gRPC: an HTTP status, so no HTTP client mistakes the answer for success.
      respondTrailersOnly(stream, Status.INTERNAL, 'content-type must be application/grpc', { ':status': 415 });
      return;
    }
    const path = headers[':path'] ?? '';
    const method = this.methods.get(path);
    if (!method) {
      respondTrailersOnly(stream, Status.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const encoding = single(headers['grpc-encoding']);
    if (!acceptsEncoding(encoding)) {
      respondTrailersOnly(stream, Status.UNIMPLEMENTED, `grpc-encoding ${encoding} is not supported`, {
        'grpc-accept-encoding': ACCEPTED_ENCODINGS,
      });
      return;
    }
    const timeoutMs = parseGrpcTimeout(single(headers['grpc-timeout']));
    if (Number.isNaN(timeoutMs)) {
      respondTrailersOnly(stream, Status.INTERNAL, 'malformed grpc-timeout');
      return;
    }
    // Metadata is read here, once per stream: the identity does not change mid-stream.
    // Without a token every stream of the connection presents the same peer (one object).
    const authorization = single(headers['authorization']);
    const peer: PeerInfo = authorization === undefined ? conn.peer : { ...conn.peer, authorization };

    const call = new Http2GrpcCall<unknown>(
      stream,
      method.decode,
      { maxMessageBytes: this.opts.maxMessageBytes, encoding, timeoutMs },
      conn,
    );
    conn.calls.add(call);
    clearTimeout(conn.idleTimer);
    if (method.kind === 'streaming') method.serve(call, peer);
    else this.unary(method, call, peer);
  }

  /** A unary call: exactly one request, then one response and the status. */
  private unary(method: UnaryMethod<unknown>, call: Http2GrpcCall<unknown>, peer: PeerInfo): void {
    let request: unknown;
    let count = 0;
    call.listen({
      request: (req) => {
        request = req;
        count++;
      },
      halfClose: () => {
        if (count !== 1) {
          call.endWith(count === 0 ? Status.INTERNAL : Status.UNIMPLEMENTED, `unary call received ${count} requests`);
          return;
        }
        method.serve(request, peer).then(
          (result) => {
            if (isCallEnd(result)) {
              call.endWith(grpcStatusOf(result), result.message);
              return;
            }
            call.write([result]);
            call.endWith(Status.OK, '');
          },
          (err: unknown) => {
            this.logger.error({ rpc: 'unary', err }, 'unary call failed');
            call.endWith(Status.INTERNAL, 'internal error');
          },
        );
      },
      cancel: () => {},
      drain: () => {},
    });
  }
}

/** One listener for every stream's 'error': errors arrive as 'close' with an RST code. */
function ignore(): void {}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
