// A real BIND 9 (`named -g`) on 127.0.0.1 for tests: one primary zone that accepts
// TSIG-signed DNS UPDATEs, a wildcard A record so every test name resolves to 127.0.0.1,
// no recursion, no rndc. Starts in well under a second. Extra zones (a delegated
// `_acme-challenge` zone, as cert-manager's cnameStrategy: Follow is used) each accept
// updates signed with their own key only.

import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, NAMED, requireTool, startProcess, waitUntil, type ServerProcess } from './tools.js';

export interface ZoneRecord {
  /** Relative to the zone (`www`, `@`, `*`) or absolute with a trailing dot. */
  name: string;
  /** `A`, `TXT`, `CNAME`... as in a zone file. */
  type: string;
  /** RDATA as in a zone file; a TXT value is quoted for you unless it already is. */
  value: string;
  ttl?: number;
}

export interface TsigKeySpec {
  name: string;
  algorithm: string;
  /** base64 */
  secret: string;
}

export interface BindOptions {
  /** Default `example.test`. */
  zone?: string;
  records?: ZoneRecord[];
  /** Algorithm of `tsig`; default hmac-sha256. */
  tsigAlgorithm?: string;
  /** Extra keys allowed to update the zone, one per algorithm (e.g. hmac-sha512). */
  extraAlgorithms?: string[];
  /** More primary zones on the same server, each updatable with its own key only (`zoneKeys`). */
  extraZones?: Array<{ zone: string; records?: ZoneRecord[] }>;
  /**
   * Answer 127.0.0.1 recursively, as the public resolvers an ACME CA uses do: a CNAME into
   * another zone is chased to its target's records (without it BIND answers the CNAME only).
   */
  recursion?: boolean;
}

export interface BindServer {
  host: string;
  port: number;
  zone: string;
  /** Allowed to update the zone. */
  tsig: TsigKeySpec;
  /** One more allowed key per `extraAlgorithms` entry, by algorithm. */
  keys: Record<string, TsigKeySpec>;
  /** Known to the server but not allowed to update: updates get REFUSED. */
  readOnlyTsig: TsigKeySpec;
  /** Per extra zone: the one key allowed to update it (and no other zone). */
  zoneKeys: Record<string, TsigKeySpec>;
  /** TXT values at `name` (chunks of one record joined), [] when there are none. */
  queryTxt(name: string): Promise<string[]>;
  /** Addresses of `name` (A), [] when there are none. */
  queryA(name: string): Promise<string[]>;
  /** named's output so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

function newKey(name: string, algorithm: string): TsigKeySpec {
  const bytes = { 'hmac-sha1': 20, 'hmac-sha384': 48, 'hmac-sha512': 64 }[algorithm] ?? 32;
  return { name, algorithm, secret: randomBytes(bytes).toString('base64') };
}

function zoneFile(zone: string, records: ZoneRecord[]): string {
  const lines = [
    '$TTL 60',
    `$ORIGIN ${zone}.`,
    `@ IN SOA ns1.${zone}. hostmaster.${zone}. 1 3600 600 86400 60`,
    `@ IN NS ns1.${zone}.`,
    'ns1 IN A 127.0.0.1',
    '@ IN A 127.0.0.1',
    '* IN A 127.0.0.1',
  ];
  for (const r of records) {
    const type = r.type.toUpperCase();
    const value = type === 'TXT' && !r.value.startsWith('"') ? JSON.stringify(r.value) : r.value;
    lines.push(`${r.name} ${r.ttl ?? 60} IN ${type} ${value}`);
  }
  return `${lines.join('\n')}\n`;
}

function namedConf(
  dir: string,
  port: number,
  zone: string,
  allowed: TsigKeySpec[],
  readOnly: TsigKeySpec,
  extra: Record<string, TsigKeySpec> = {},
  recursion = false,
): string {
  const keys = [...allowed, readOnly, ...Object.values(extra)].map(
    (k) => `key "${k.name}" { algorithm ${k.algorithm}; secret "${k.secret}"; };`,
  );
  const extraZones = Object.entries(extra).map(
    ([z, k]) => `zone "${z}" {
  type primary;
  file "${join(dir, `${z}.db`)}";
  allow-update { key "${k.name}"; };
};
`,
  );
  return `${keys.join('\n')}
controls { };
options {
  directory "${dir}";
  pid-file none;
  session-keyfile none;
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  ${recursion ? 'recursion yes;\n  allow-recursion { 127.0.0.1; };' : 'recursion no;'}
  allow-query { any; };
  dnssec-validation no;
  notify no;
};
zone "${zone}" {
  type primary;
  file "${join(dir, `${zone}.db`)}";
  allow-update { ${allowed.map((k) => `key "${k.name}";`).join(' ')} };
};
${extraZones.join('')}`;
}

function resolverFor(port: number): Resolver {
  const resolver = new Resolver({ timeout: 1000, tries: 2 });
  resolver.setServers([`127.0.0.1:${port}`]);
  return resolver;
}

function emptyOnNoData<T>(err: unknown): T[] {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
  throw err;
}

async function startOnce(named: string, opts: BindOptions): Promise<BindServer> {
  const zone = (opts.zone ?? 'example.test').toLowerCase().replace(/\.$/, '');
  const dir = mkdtempSync(join(tmpdir(), 'bind-'));
  const port = await freePort({ udp: true });
  const tsig = newKey('acme-update', opts.tsigAlgorithm ?? 'hmac-sha256');
  const keys: Record<string, TsigKeySpec> = { [tsig.algorithm]: tsig };
  for (const algorithm of opts.extraAlgorithms ?? []) keys[algorithm] ??= newKey(`acme-update-${algorithm}`, algorithm);
  const readOnlyTsig = newKey('read-only', 'hmac-sha256');
  writeFileSync(join(dir, `${zone}.db`), zoneFile(zone, opts.records ?? []));
  const zoneKeys: Record<string, TsigKeySpec> = {};
  for (const extra of opts.extraZones ?? []) {
    const z = extra.zone.toLowerCase().replace(/\.$/, '');
    zoneKeys[z] = newKey(`update-${z}`, 'hmac-sha256');
    writeFileSync(join(dir, `${z}.db`), zoneFile(z, extra.records ?? []));
  }
  writeFileSync(join(dir, 'named.conf'), namedConf(dir, port, zone, Object.values(keys), readOnlyTsig, zoneKeys, opts.recursion === true));

  // -g: foreground, log to stderr. No -u: as root it keeps root, which owns `dir`.
  const proc: ServerProcess = startProcess(named, ['-g', '-4', '-c', join(dir, 'named.conf')], { cwd: dir });
  const resolver = resolverFor(port);
  const stop = async () => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(`named on 127.0.0.1:${port}`, proc, async () => (await resolver.resolveSoa(zone)).serial > 0, 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    zone,
    tsig,
    keys,
    readOnlyTsig,
    zoneKeys,
    queryTxt: async (name) =>
      (
        await resolverFor(port)
          .resolveTxt(name)
          .catch(emptyOnNoData<string[]>)
      ).map((chunks) => chunks.join('')),
    queryA: (name) =>
      resolverFor(port)
        .resolve4(name)
        .catch(emptyOnNoData<string>),
    output: () => proc.output(),
    stop,
  };
}

/** Starts named; retries on another port when the one picked was taken meanwhile. */
export async function startBind(opts: BindOptions = {}): Promise<BindServer> {
  const named = requireTool(NAMED);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(named, opts);
    } catch (err) {
      lastError = err;
      if (!/address in use/i.test((err as Error).message)) break;
    }
  }
  throw lastError;
}

/** Convenience: TXT values of `name` from the DNS server at 127.0.0.1:`port`. */
export async function queryTxt(port: number, name: string): Promise<string[]> {
  return (
    await resolverFor(port)
      .resolveTxt(name)
      .catch(emptyOnNoData<string[]>)
  ).map((chunks) => chunks.join(''));
}
