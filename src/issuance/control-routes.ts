// The engine's HTTP controls on the server's HTTP port, for `envoy-sds renew` and people:
//   POST /issuance/renew/<namespace>/<name>   (or /issuance/renew/<name> when unambiguous)
//        with `content-type: application/json`, a JSON object body and the
//        x-envoy-sds-intent header (see observability/state-change-request.ts)
//   GET  /issuance/status
// Loopback callers only, and only where loopback is trusted (not in Kubernetes by
// default, where a sidecar delivers every peer from loopback): the same port may face
// the internet to answer HTTP-01. The HTTP server has already checked Host and Origin.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopbackAddress } from '../net/loopback.js';
import { RateLimiter } from '../observability/rate-limiter.js';
import { readStateChangeRequest } from '../observability/state-change-request.js';

export const CONTROL_PREFIX = '/issuance/';

export interface EngineControls {
  /** Certificate ids (`namespace/name`) matching `ref`, which is `namespace/name` or `name`. */
  find(ref: string): string[];
  renew(id: string): Promise<string>;
  status(): unknown;
}

export interface ControlOptions {
  /** Whether loopback callers may use the controls at all (ServerConfig.trustLoopback). */
  trustLoopback: boolean;
  /** Renewals accepted at once, over all certificates; then one more per `renewIntervalMs`. */
  renewBurst?: number;
  /** Per certificate: at most one accepted renewal per this many ms. Default 60 s. */
  renewIntervalMs?: number;
  now?: () => number;
}

export function isLoopback(address: string | undefined): boolean {
  return isLoopbackAddress(address);
}

export function controlRoutes(
  controls: EngineControls,
  opts: ControlOptions = { trustLoopback: true },
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const interval = opts.renewIntervalMs ?? 60_000;
  // Each accepted renewal may place an order at a public CA, whose rate limits a flood
  // would burn: a small burst overall, and one per certificate per interval.
  const overall = new RateLimiter(opts.renewBurst ?? 5, interval / 5, opts.now);
  const perCertificate = new RateLimiter(1, interval, opts.now);
  const json = (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(code, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify(body, null, 2)}\n`);
  };
  return async (req, res) => {
    if (!opts.trustLoopback) {
      json(res, 403, {
        error: 'issuance controls are off: loopback is not trusted here (Kubernetes); set trustLoopback: true to allow them',
      });
      return;
    }
    if (!isLoopback(req.socket.remoteAddress)) {
      json(res, 403, { error: 'issuance controls are available from loopback only' });
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    } catch {
      json(res, 400, { error: 'malformed path' });
      return;
    }
    if (path === '/issuance/status') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET' }).end();
      json(res, 200, controls.status());
      return;
    }
    const m = /^\/issuance\/renew\/([a-z0-9.-]+(?:\/[a-z0-9.-]+)?)$/.exec(path);
    if (!m) {
      json(res, 404, { error: 'not found (POST /issuance/renew/<namespace>/<name>, GET /issuance/status)' });
      return;
    }
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    const command = await readStateChangeRequest(req);
    if (!command.ok) {
      json(res, command.status, { error: command.error });
      return;
    }
    const ids = controls.find(m[1]!);
    if (ids.length === 0) {
      json(res, 404, { error: `no Certificate "${m[1]}"` });
      return;
    }
    if (ids.length > 1) {
      json(res, 409, { error: `"${m[1]}" is ambiguous: ${ids.join(', ')}; name it as namespace/name` });
      return;
    }
    const wait = perCertificate.take(ids[0]!) || overall.take('*');
    if (wait > 0) {
      json(
        res,
        429,
        { error: `too many renewals; try again in ${Math.ceil(wait / 1000)} s` },
        { 'retry-after': String(Math.ceil(wait / 1000)) },
      );
      return;
    }
    try {
      json(res, 202, { certificate: ids[0], renewalRequestedAt: await controls.renew(ids[0]!) });
    } catch (err) {
      // A follower: the message names the leader to ask. Nothing was renewed, so the
      // request does not count against the rate limits.
      perCertificate.refund(ids[0]!);
      overall.refund('*');
      json(res, 409, { error: (err as Error).message });
    }
  };
}
