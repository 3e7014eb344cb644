// What a state-changing request on the HTTP port must look like, so that a web page in a
// browser on the same machine (or a DNS-rebinding one) cannot send it: POST, a JSON body,
// and a custom header. A browser sends neither that content type nor a custom header
// across origins without a CORS preflight, which this server never answers. A foreign
// `Origin` is refused by the HTTP server itself, before any route.

import type { IncomingMessage } from 'node:http';

/** The header `envoy-sds renew` sends; any non-empty value. */
export const INTENT_HEADER = 'x-envoy-sds-intent';

const MAX_BODY_BYTES = 4096;

export type StateChangeRequest = { ok: true; body: Record<string, unknown> } | { ok: false; status: number; error: string };

export async function readStateChangeRequest(req: IncomingMessage): Promise<StateChangeRequest> {
  if (req.method !== 'POST') return { ok: false, status: 405, error: 'use POST' };
  const intent = req.headers[INTENT_HEADER];
  if (typeof intent !== 'string' || intent.length === 0) {
    return { ok: false, status: 400, error: `a state-changing request needs the ${INTENT_HEADER} header` };
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return { ok: false, status: 415, error: 'the body must be application/json' };
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { ok: false, status: 413, error: `the body is limited to ${MAX_BODY_BYTES} bytes` };
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return { ok: false, status: 400, error: 'the body is not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { ok: false, status: 400, error: 'the body must be a JSON object' };
  return { ok: true, body: body as Record<string, unknown> };
}
