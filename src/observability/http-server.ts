import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { STATUS_PAGE_CSP } from './status-page.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface Readiness {
  ready: boolean;
  /** Shown on /readyz: what is missing or degraded. */
  reasons: string[];
}

export interface HttpServerOptions {
  address: string;
  logger: Logger;
  metrics: Metrics;
  readiness: () => Readiness;
  /** JSON delivery status (GET /status). */
  status: () => unknown;
  /** The HTML status page (GET /). */
  page?: () => Promise<string>;
  /** Extra prefix routes, e.g. the ACME HTTP-01 solver. */
  prefixRoutes?: Map<string, RouteHandler>;
}

/** /healthz, /readyz, /metrics, /status, and prefix routes such as /.well-known/acme-challenge/. */
export class HttpServer {
  private server: Server | undefined;

  constructor(private readonly opts: HttpServerOptions) {}

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        this.opts.logger.error({ err, path: req.url }, 'HTTP handler failed');
        if (!res.headersSent) res.writeHead(500).end('internal error\n');
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    const i = this.opts.address.lastIndexOf(':');
    const host = this.opts.address.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(this.opts.address.slice(i + 1));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    const bound = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    this.opts.logger.info({ address: bound }, 'HTTP listening (health, metrics, status, ACME HTTP-01)');
    return bound;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    for (const [prefix, handler] of this.opts.prefixRoutes ?? []) {
      if (path.startsWith(prefix)) return handler(req, res);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/':
        if (this.opts.page) {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': STATUS_PAGE_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' }).end(await this.opts.page());
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        }
        return;
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const r = this.opts.readiness();
        res
          .writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(r.ready ? `ready${r.reasons.length ? ` (degraded: ${r.reasons.join('; ')})` : ''}\n` : `not ready: ${r.reasons.join('; ')}\n`);
        return;
      }
      case '/metrics': {
        const body = await this.opts.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.opts.metrics.registry.contentType }).end(body);
        return;
      }
      case '/status':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.opts.status(), null, 2));
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }
}
