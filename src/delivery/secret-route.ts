import type { IncomingMessage, ServerResponse } from 'node:http';
import { parsePemBlocks, toPem } from '../pki/pem.js';
import type { StoredSecret } from '../store/secret-material.js';

/**
 * GET /secrets/<name>: what the store serves under a name, certificates only (never the
 * key), for `envoy-sds inspect`. Names the store does not hold are 404, whoever asks.
 */
export function secretRoute(get: (name: string) => StoredSecret | undefined, lastRejection: (name: string) => unknown) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let name: string;
    try {
      name = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname.slice('/secrets/'.length));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'the name is not valid percent-encoding' }));
      return;
    }
    const s = get(name);
    const rejection = lastRejection(name);
    if (!s) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: `no secret "${name}" is served`, ...(rejection ? { lastRejection: rejection } : {}) }));
      return;
    }
    const pem = s.material.kind === 'tls_certificate' ? s.material.certificateChain : s.material.trustedCa;
    // Certificate blocks only, re-encoded: whatever else a source's PEM held stays here.
    const certificates = parsePemBlocks(pem, { allowTextOutsideBlocks: true })
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => toPem('CERTIFICATE', b.der))
      .join('');
    const body = {
      name: s.name,
      kind: s.kind,
      version: s.version,
      origin: `${s.origin.source}:${s.origin.ref}`,
      updatedAt: s.updatedAt.toISOString(),
      warnings: s.warnings,
      certificates,
      ...(rejection ? { lastRejection: rejection } : {}),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 1));
  };
}
