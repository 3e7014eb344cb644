// `envoy-sds rotate-ca ISSUER [--abort]`: asks the running server (its HTTP port, loopback
// only) to rotate a CA issuer in stages, or to go back to the old CA during Overlap.
// `envoy-sds rotate-ca --status` shows every rotation, phase by phase.

import { DEFAULT_HTTP_ADDRESS } from '../config/server-config.js';
import type { CaRotationStatus } from '../issuance/ca-rotation/ca-rotation.js';
import { ROTATION_PATH } from '../issuance/ca-rotation/rotation-route.js';
import { INTENT_HEADER } from '../observability/state-change-request.js';
import { parseCommandArgs, UsageError } from './arguments.js';
import { parseServerAddress } from './server-address.js';

export const ROTATE_CA_USAGE = `Usage: envoy-sds rotate-ca ISSUER [--abort] [--http ADDR] [-o text|json]
       envoy-sds rotate-ca --status [--http ADDR] [-o text|json]

Rotates the key pair of a CA issuer without a failed handshake, in three phases:
  Overlap  every bundle from the CA (ca.crt, so <name>-cacert) holds old + new CA;
           waits until every gateway subscribed to one has ACKed it (fleet-wide)
  Reissue  the new CA signs; every leaf of the issuer is re-issued over a window
  Retire   once every leaf is new and ACKed where served, the old CA leaves the bundles
ISSUER is ClusterIssuer/NAME, Issuer/NS/NAME, NS/NAME or NAME.

Options:
  --abort              back to the old CA alone (during Overlap, before the new CA signs)
  --status             show every CA issuer's rotation
  --http ADDR          the server's HTTP address (default ${DEFAULT_HTTP_ADDRESS})
  -o, --output FORMAT  text (default) or json
  -h, --help           this help

Exit status: 0 done, 1 refused by the server (with its reason), 2 usage error,
3 the server cannot be reached.
`;

export async function rotateCaCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const { values, positionals } = parseCommandArgs('rotate-ca', args, {
    abort: { type: 'boolean', default: false },
    status: { type: 'boolean', default: false },
    http: { type: 'string', default: DEFAULT_HTTP_ADDRESS },
    output: { type: 'string', short: 'o', default: 'text' },
  });
  if (values.help) {
    out.write(ROTATE_CA_USAGE);
    return 0;
  }
  if (values.output !== 'text' && values.output !== 'json')
    throw new UsageError(`envoy-sds rotate-ca: -o ${values.output}: expected text or json`);
  const address = parseServerAddress(values.http, '--http');
  if (address.kind !== 'tcp') throw new UsageError('envoy-sds rotate-ca: --http takes host:port');
  if (values.status ? positionals.length > 0 : positionals.length !== 1) {
    throw new UsageError(
      values.status
        ? 'envoy-sds rotate-ca --status takes no issuer'
        : 'envoy-sds rotate-ca: name one issuer (see envoy-sds rotate-ca --help)',
    );
  }
  const url = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}${ROTATION_PATH}`;
  let res: Response;
  try {
    res = values.status
      ? await fetch(url, { signal: AbortSignal.timeout(10_000) })
      : await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [INTENT_HEADER]: 'rotate-ca' },
          body: JSON.stringify({ issuer: positionals[0], ...(values.abort ? { abort: true } : {}) }),
          signal: AbortSignal.timeout(30_000),
        });
  } catch (e) {
    err.write(`envoy-sds rotate-ca: cannot reach the server at ${values.http} (${(e as Error).message})\n`);
    return 3;
  }
  const body = (await res.json().catch(() => ({}))) as { rotation?: CaRotationStatus; rotations?: CaRotationStatus[]; error?: string };
  if (!res.ok) {
    err.write(`envoy-sds rotate-ca: ${body.error ?? `HTTP ${res.status}`}\n`);
    return 1;
  }
  const rotations = body.rotations ?? (body.rotation ? [body.rotation] : []);
  if (values.output === 'json') out.write(`${JSON.stringify(values.status ? { rotations } : body.rotation, null, 2)}\n`);
  else if (rotations.length === 0) out.write('no CA rotation has run\n');
  else out.write(rotations.map(formatRotation).join('\n'));
  return 0;
}

/** A rotation for people: phase, CAs, what the gate waits for, the history. */
export function formatRotation(r: CaRotationStatus): string {
  const lines = [
    `${r.issuer}: ${r.phase}${r.halted ? ' (HALTED)' : ''} since ${r.phaseSince} (started ${r.startedAt}, ${r.trigger === 'command' ? 'by rotate-ca' : "by the CA Certificate's key rotation"})`,
  ];
  for (const ca of r.oldCA) lines.push(`  old CA  ${ca.subject}  sha256 ${ca.sha256Fingerprint.slice(0, 23)}…  until ${ca.notAfter}`);
  for (const ca of r.newCA) lines.push(`  new CA  ${ca.subject}  sha256 ${ca.sha256Fingerprint.slice(0, 23)}…  until ${ca.notAfter}`);
  if (r.halted) lines.push(`  halted: ${r.halted.message}`);
  if (r.leaves)
    lines.push(`  leaves  ${r.leaves.reissued}/${r.leaves.total} signed by the new CA (${r.leaves.requested} re-issuance(s) requested)`);
  if (r.deadline) lines.push(`  deadline ${r.deadline}`);
  if (r.phase === 'Overlap' || r.phase === 'Reissue' || r.phase === 'Retire') {
    if (!r.checkedAt) lines.push('  gate    not checked yet in this phase');
    else
      lines.push(
        `  gate    ${r.waitingCount === 0 ? 'open' : `waiting for ${r.waitingCount}`} (${r.subscribers} subscription(s) counted, checked ${r.checkedAt})`,
      );
    for (const w of r.waitingFor)
      lines.push(`    ${w.secret}  ${w.state}${w.node ? `  node ${w.node}${w.replica ? ` on ${w.replica}` : ''}` : ''}`);
  }
  for (const h of r.history) lines.push(`  ${h.at}  ${h.phase.padEnd(8)} ${h.note}`);
  return `${lines.join('\n')}\n`;
}
