import { DEFAULT_HTTP_ADDRESS } from '../config/server-config.js';
import type { DeliveryPage, NodeDelivery, SecretDelivery } from '../delivery/delivery-report.js';
import { parseCommandArgs, UsageError } from './arguments.js';
import { parseServerAddress } from './server-address.js';

export const STATUS_USAGE = `Usage: envoy-sds status [--node ID] [--secret NAME] [-o table|wide|json] [options]

Which gateway holds which version of each secret, for the whole fleet (every replica,
in Kubernetes mode), as istioctl proxy-status shows it:
  SYNCED    the gateway ACKed the current version
  PENDING   the current version was sent, no ACK yet (for how long)
  STALE     the gateway ACKed an older version (for how long)
  NACKED    the gateway rejected the last version sent (with Envoy's message)
  NOT_SENT  denied to the gateway, or the secret does not exist

Options:
  --http ADDR          the server's HTTP address (default ${DEFAULT_HTTP_ADDRESS})
  --node ID            one gateway node (a trailing * matches a prefix)
  --secret NAME        one secret (a trailing * matches a prefix)
  --state STATE        only rows in this state
  -o, --output FORMAT  table (default), wide (identity, replica, full versions) or json
  --stale-after SECS   PENDING or STALE for longer than this fails the check (default 300)
  -h, --help           this help

Exit status: 0 all delivered, 1 a subscription is NACKED or behind for longer than
--stale-after (so a rollout can wait on it), 2 usage error, 3 the server cannot be read.
`;

export interface Row {
  node: NodeDelivery;
  secret: SecretDelivery;
}

/** Every page of /delivery for the query. */
async function readAll(http: string, query: URLSearchParams): Promise<{ rows: Row[]; fleet: boolean; fleetError?: string }> {
  const rows: Row[] = [];
  let offset = 0;
  let fleet = true;
  let fleetError: string | undefined;
  for (;;) {
    query.set('offset', String(offset));
    query.set('limit', '500');
    const res = await fetch(`http://${http}/delivery?${query.toString()}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as DeliveryPage & { fleet: boolean; fleetError?: string; error?: string };
    if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
    fleet &&= body.fleet;
    fleetError ??= body.fleetError;
    for (const node of body.nodes) for (const secret of node.secrets) rows.push({ node, secret });
    offset += body.nodes.length;
    if (body.nodes.length === 0 || offset >= body.total) break;
  }
  return { rows, fleet, ...(fleetError ? { fleetError } : {}) };
}

export function age(sinceIso: string | undefined, now: number): string {
  if (!sinceIso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(sinceIso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

const short = (v: string | null): string => (v ? v.slice(0, 8) : '-');

export function detail(s: SecretDelivery, now: number): string {
  switch (s.state) {
    case 'NACKED':
      return `rejected ${short(s.nack?.version ?? null)}: ${JSON.stringify(s.nack?.message ?? '')}`;
    case 'STALE':
      return `holds ${short(s.acked)}, current ${short(s.current)} for ${age(s.behindSince, now)}`;
    case 'PENDING':
      return `sent ${short(s.sent)}, no ACK for ${age(s.behindSince, now)}`;
    case 'NOT_SENT':
      return s.reason === 'denied' ? 'denied to this caller' : 'no such secret (yet)';
    default:
      return '';
  }
}

/** Rows as aligned columns. */
export function table(rows: Row[], wide: boolean, now: number): string {
  const head = wide
    ? ['NODE', 'CLUSTER', 'IDENTITY', 'REPLICA', 'SECRET', 'STATE', 'CURRENT', 'SENT', 'ACKED', 'DETAIL']
    : ['NODE', 'CLUSTER', 'SECRET', 'STATE', 'ACKED', 'DETAIL'];
  const lines = rows.map(({ node, secret: s }) =>
    wide
      ? [
          node.node.id,
          node.node.cluster,
          node.identity,
          node.replica,
          s.name,
          s.state,
          s.current ?? '-',
          s.sent ?? '-',
          s.acked ?? '-',
          detail(s, now),
        ]
      : [node.node.id, node.node.cluster, s.name, s.state, short(s.acked), detail(s, now)],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return (
    [head, ...lines]
      .map((l) =>
        l
          .map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export async function statusCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const { values, positionals } = parseCommandArgs('status', args, {
    http: { type: 'string', default: DEFAULT_HTTP_ADDRESS },
    node: { type: 'string' },
    secret: { type: 'string' },
    state: { type: 'string' },
    output: { type: 'string', short: 'o', default: 'table' },
    'stale-after': { type: 'string', default: '300' },
  });
  if (values.help) {
    out.write(STATUS_USAGE);
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`envoy-sds status: unexpected argument "${positionals[0]}" (filter with --node or --secret)`);
  const format = values.output;
  if (format !== 'table' && format !== 'wide' && format !== 'json')
    throw new UsageError(`envoy-sds status: -o ${format}: expected table, wide or json`);
  const staleAfter = Number(values['stale-after']);
  if (!Number.isFinite(staleAfter) || staleAfter < 0)
    throw new UsageError(`envoy-sds status: --stale-after ${values['stale-after']}: expected seconds`);
  const address = parseServerAddress(values.http, '--http');
  if (address.kind !== 'tcp') throw new UsageError('envoy-sds status: --http takes host:port');
  const http = address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
  const query = new URLSearchParams();
  if (values.node) query.set('node', values.node);
  if (values.secret) query.set('secret', values.secret);
  if (values.state) query.set('state', values.state);

  let result;
  try {
    result = await readAll(http, query);
  } catch (e) {
    err.write(`envoy-sds status: cannot read ${http}/delivery (${(e as Error).message})\n`);
    return 3;
  }
  const now = Date.now();
  if (format === 'json')
    out.write(
      `${JSON.stringify(
        result.rows.map((r) => ({ replica: r.node.replica, node: r.node.node, identity: r.node.identity, ...r.secret })),
        null,
        1,
      )}\n`,
    );
  else if (result.rows.length === 0) out.write('no gateway holds a matching subscription\n');
  else out.write(table(result.rows, format === 'wide', now));
  if (!result.fleet)
    err.write(`note: this replica's streams only${result.fleetError ? ` (fleet status unavailable: ${result.fleetError})` : ''}\n`);
  const failing = result.rows.filter(
    ({ secret: s }) =>
      s.state === 'NACKED' ||
      ((s.state === 'STALE' || s.state === 'PENDING') &&
        s.behindSince !== undefined &&
        now - Date.parse(s.behindSince) > staleAfter * 1000),
  );
  return failing.length > 0 ? 1 : 0;
}
