// HTTP-01: the CA fetches http://<name>/.well-known/acme-challenge/<token> and expects
// the key authorization. The server's own HTTP port answers from this map, so no
// separate solver process or Ingress is needed; the port must be the one the CA reaches
// (80 on the public name, directly or through a forwarder).

import type { IncomingMessage, ServerResponse } from 'node:http';

export const HTTP01_PREFIX = '/.well-known/acme-challenge/';

export class Http01Responder {
  private readonly tokens = new Map<string, string>();

  present(token: string, keyAuthorization: string): void {
    this.tokens.set(token, keyAuthorization);
  }

  cleanup(token: string): void {
    this.tokens.delete(token);
  }

  get size(): number {
    return this.tokens.size;
  }

  /** The route handler for HTTP01_PREFIX. Tokens are base64url (RFC 8555 section 8.3). */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const token = path.slice(HTTP01_PREFIX.length);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const body = /^[A-Za-z0-9_-]+$/.test(token) ? this.tokens.get(token) : undefined;
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  };
}
