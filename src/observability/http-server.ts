import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackAddress } from '../net/loopback.js';
import { HostAllowlist, hostOfHeader } from './host-allowlist.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface Readiness {
  ready: boolean;
  /** Shown on /readyz: what is missing or degraded. */
  reasons: string[];
}

export interface HttpServerOptions {
  address: string;
  /** Names allowed in `Host` besides the bound addresses. Default none. */
  allowedHosts?: readonly string[];
  /** Default `auto`: full details when bound to loopback, limited otherwise. */
  details?: 'auto' | 'full' | 'limited';
  logger: Logger;
  metrics: Metrics;
  readiness: () => Readiness;
  /** JSON delivery status (GET /status). */
  status: () => unknown;
  /** What /status shows when details are limited: counts, no names. */
  statusSummary?: () => unknown;
  /** The HTML status page (GET /) and its Content-Security-Policy, shown when details are full. */
  page?: { html: () => Promise<string>; contentSecurityPolicy: string };
  /** Prefix routes that show names (delivery, secrets): only when details are full. */
  detailRoutes?: Map<string, RouteHandler>;
  /** Extra prefix routes, e.g. the ACME HTTP-01 solver. */
  prefixRoutes?: Map<string, RouteHandler>;
}

/** Answered whatever the Host: an ACME validator asks with the certificate's own name. */
export const ANY_HOST_PREFIXES = ['/.well-known/acme-challenge/'];

const INDEX = ['/healthz', '/readyz', '/metrics', '/status'];

/** /, /healthz, /readyz, /metrics, /status, and prefix routes such as /.well-known/acme-challenge/. */
export class HttpServer {
  private server: Server | undefined;
  private hosts: HostAllowlist | undefined;
  private fullDetails = false;

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
    this.hosts = new HostAllowlist(a.address, this.opts.allowedHosts ?? []);
    const details = this.opts.details ?? 'auto';
    this.fullDetails = details === 'full' || (details === 'auto' && isLoopbackAddress(a.address));
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
    if (!ANY_HOST_PREFIXES.some((p) => path.startsWith(p))) {
      if (!this.hosts?.allows(req.headers.host)) {
        this.opts.metrics.httpRefused.inc({ reason: 'host' });
        res.writeHead(421, { 'content-type': 'text/plain' }).end('this server does not answer for that Host\n');
        return;
      }
      const refusal = crossSiteRefusal(req, this.hosts);
      if (refusal) {
        this.opts.metrics.httpRefused.inc({ reason: 'cross_site' });
        res.writeHead(403, { 'content-type': 'text/plain' }).end(`${refusal}\n`);
        return;
      }
    }
    for (const [prefix, handler] of this.opts.prefixRoutes ?? []) {
      if (path.startsWith(prefix)) return handler(req, res);
    }
    for (const [prefix, handler] of this.opts.detailRoutes ?? []) {
      if (!path.startsWith(prefix)) continue;
      if (this.fullDetails) return handler(req, res);
      res.writeHead(403, { 'content-type': 'text/plain' }).end('details are limited on this port (http.details)\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/':
        if (this.opts.page && this.fullDetails) {
          res
            .writeHead(200, {
              'content-type': 'text/html; charset=utf-8',
              'content-security-policy': this.opts.page.contentSecurityPolicy,
              'x-content-type-options': 'nosniff',
              'referrer-policy': 'no-referrer',
            })
            .end(await this.opts.page.html());
        } else {
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`envoy-sds\n${INDEX.join('\n')}\n`);
        }
        return;
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const r = this.opts.readiness();
        if (!this.fullDetails) r.reasons = r.ready ? [] : ['details are limited on this port (http.details)'];
        res
          .writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(
            r.ready ? `ready${r.reasons.length ? ` (degraded: ${r.reasons.join('; ')})` : ''}\n` : `not ready: ${r.reasons.join('; ')}\n`,
          );
        return;
      }
      case '/metrics': {
        const body = await this.opts.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.opts.metrics.registry.contentType }).end(body);
        return;
      }
      case '/status': {
        const body = this.fullDetails ? this.opts.status() : { limited: true, ...asObject(this.opts.statusSummary?.()) };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2));
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }
}

/**
 * A state-changing request from a web page: a foreign `Origin`, or a browser's own word
 * that it is cross-site. Safe methods are left alone (a page can read nothing here
 * without CORS, which this server never grants).
 */
function crossSiteRefusal(req: IncomingMessage, hosts: HostAllowlist): string | undefined {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined;
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return 'cross-site requests are refused';
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  let host: string | undefined;
  try {
    const u = new URL(origin);
    host = u.protocol === 'http:' || u.protocol === 'https:' ? hostOfHeader(u.host) : undefined;
  } catch {
    host = undefined;
  }
  return host !== undefined && hosts.allows(host)
    ? undefined
    : `requests from the origin ${JSON.stringify(origin).slice(0, 100)} are refused`;
}

function asObject(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
}
