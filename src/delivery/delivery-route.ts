import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDeliveryQuery, queryDeliveries, type NodeDelivery } from './delivery-report.js';

/**
 * GET /delivery?node=&secret=&state=&limit=&offset= : the fleet's delivery state as
 * JSON, one entry per gateway node and replica (what `envoy-sds status` reads).
 * `fleet` is false when only this replica's streams could be read.
 */
export function deliveryRoute(rows: () => Promise<{ nodes: NodeDelivery[]; fleet: boolean; error?: string }>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/delivery') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const q = parseDeliveryQuery(url.searchParams);
    if (typeof q === 'string') {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: q }));
      return;
    }
    const r = await rows();
    const page = queryDeliveries(r.nodes, q);
    const body = { generatedAt: new Date().toISOString(), fleet: r.fleet, ...(r.error ? { fleetError: r.error } : {}), ...page };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 1));
  };
}
