// The engine's HTTP controls on the server's HTTP port, for `envoy-sds renew` and people:
//   POST /issuance/renew/<namespace>/<name>   (or /issuance/renew/<name> when unambiguous)
//   GET  /issuance/status
// Loopback callers only: the same port may face the internet to answer HTTP-01.

import type { IncomingMessage, ServerResponse } from 'node:http';

export const CONTROL_PREFIX = '/issuance/';

export interface EngineControls {
  /** Certificate ids (`namespace/name`) matching `ref`, which is `namespace/name` or `name`. */
  find(ref: string): string[];
  renew(id: string): Promise<string>;
  status(): unknown;
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

export function controlRoutes(controls: EngineControls): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const json = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
  };
  return async (req, res) => {
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
    const ids = controls.find(m[1]!);
    if (ids.length === 0) {
      json(res, 404, { error: `no Certificate "${m[1]}"` });
      return;
    }
    if (ids.length > 1) {
      json(res, 409, { error: `"${m[1]}" is ambiguous: ${ids.join(', ')}; name it as namespace/name` });
      return;
    }
    try {
      json(res, 202, { certificate: ids[0], renewalRequestedAt: await controls.renew(ids[0]!) });
    } catch (err) {
      // A follower: the message names the leader to ask.
      json(res, 409, { error: (err as Error).message });
    }
  };
}
