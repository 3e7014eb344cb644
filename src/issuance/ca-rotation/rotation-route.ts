// The rotation's HTTP control, beside the engine's renew/status controls and under the same
// rules (loopback only, where loopback is trusted; JSON body and the intent header):
//   POST /issuance/rotate-ca   {"issuer": "<ref>"}                 starts (or resumes a halted) rotation
//   POST /issuance/rotate-ca   {"issuer": "<ref>", "abort": true}  back to the old CA (Overlap only)
//   GET  /issuance/rotate-ca                                       every CA issuer's rotation
// <ref>: ClusterIssuer/name, Issuer/ns/name, ns/name or name.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopbackAddress } from '../../net/loopback.js';
import { RateLimiter } from '../../observability/rate-limiter.js';
import { readStateChangeRequest } from '../../observability/state-change-request.js';
import type { CaRotationStatus } from './ca-rotation.js';

export const ROTATION_PATH = '/issuance/rotate-ca';

export interface RotationControls {
  find(ref: string): string[];
  begin(id: string): Promise<CaRotationStatus>;
  abort(id: string): Promise<CaRotationStatus>;
  statuses(): CaRotationStatus[];
}

export function rotationRoute(controls: RotationControls, opts: { trustLoopback: boolean; now?: () => number }) {
  // Each start generates a CA key and rewrites every bundle of the issuer: a few at once, then one per 10 s.
  const limiter = new RateLimiter(3, 10_000, opts.now);
  const json = (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(code, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify(body, null, 2)}\n`);
  };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!opts.trustLoopback)
      return void json(res, 403, {
        error: 'issuance controls are off: loopback is not trusted here (Kubernetes); set trustLoopback: true to allow them',
      });
    if (!isLoopbackAddress(req.socket.remoteAddress))
      return void json(res, 403, { error: 'issuance controls are available from loopback only' });
    if ((req.url ?? '').split('?')[0] !== ROTATION_PATH) return void json(res, 404, { error: `not found (POST or GET ${ROTATION_PATH})` });
    if (req.method === 'GET' || req.method === 'HEAD') return void json(res, 200, { rotations: controls.statuses() });
    const command = await readStateChangeRequest(req);
    if (!command.ok) return void json(res, command.status, { error: command.error });
    const ref = command.body['issuer'];
    const abort = command.body['abort'] === true;
    if (typeof ref !== 'string' || ref.length === 0 || ref.length > 300)
      return void json(res, 400, { error: 'name the issuer: {"issuer": "ClusterIssuer/name" | "Issuer/ns/name" | "name"}' });
    const ids = controls.find(ref);
    if (ids.length === 0) return void json(res, 404, { error: `no CA issuer "${ref}" (only issuers of type ca rotate)` });
    if (ids.length > 1) return void json(res, 409, { error: `"${ref}" is ambiguous: ${ids.join(', ')}` });
    const wait = abort ? 0 : limiter.take('*');
    if (wait > 0)
      return void json(
        res,
        429,
        { error: `too many rotations; try again in ${Math.ceil(wait / 1000)} s` },
        { 'retry-after': String(Math.ceil(wait / 1000)) },
      );
    try {
      json(res, abort ? 200 : 202, { rotation: await (abort ? controls.abort(ids[0]!) : controls.begin(ids[0]!)) });
    } catch (err) {
      if (!abort) limiter.refund('*');
      json(res, 409, { error: (err as Error).message });
    }
  };
}
