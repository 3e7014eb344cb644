// DNS UPDATE (RFC 2136) of one TXT record, signed with TSIG (RFC 8945): what the ACME
// DNS-01 solver needs to publish and withdraw `_acme-challenge` values.
//
// Add:    update section `name TTL IN TXT "value"`                   (section 2.5.1)
// Delete: update section `name 0 NONE TXT "value"`, exactly that RR  (section 2.5.4)
// No prerequisites: adding a present RR or deleting an absent one is a no-op, so a retry
// is always safe.

import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { DnsUpdateError, type DnsUpdateErrorCode } from './dns-update-error.js';
import { exchangeTcp, exchangeUdp, type DnsServer } from './dns-transport.js';
import {
  decodeMessage,
  encodeHeader,
  encodeQuestion,
  encodeRecord,
  encodeTxtRdata,
  normalizeName,
  Opcode,
  RRClass,
  RRType,
} from './dns-wire.js';
import { decodeTsig, prepareKey, signRequest, TSIG_ERRORS, verifyResponse, type PreparedKey, type TsigKey } from './tsig.js';

export { DnsUpdateError, type DnsUpdateErrorCode } from './dns-update-error.js';
export type { DnsServer } from './dns-transport.js';
export type { TsigKey } from './tsig.js';

export interface TxtChange {
  action: 'add' | 'delete';
  /** Owner name, inside `zone` (e.g. `_acme-challenge.www.example.com`). */
  name: string;
  value: string;
  /** Seconds, for `add`; default 60. */
  ttl?: number;
}

export interface UpdateOptions {
  /** For the whole exchange, including a TCP retry after a truncated UDP answer. Default 10 s. */
  timeoutMs?: number;
  /** Default `tcp`. `udp` falls back to TCP when the answer is truncated. */
  transport?: 'udp' | 'tcp';
}

const DEFAULT_TTL = 60;
const DEFAULT_TIMEOUT_MS = 10_000;

const RCODES: Record<number, { name: string; code: DnsUpdateErrorCode; hint: string }> = {
  1: { name: 'FORMERR', code: 'DNS_UPDATE_FORMERR', hint: 'the server could not parse the update' },
  2: {
    name: 'SERVFAIL',
    code: 'DNS_UPDATE_SERVFAIL',
    hint: 'the server failed to apply the update; its logs say why (journal file permissions, zone not loaded)',
  },
  3: { name: 'NXDOMAIN', code: 'DNS_UPDATE_NXDOMAIN', hint: 'a prerequisite failed, though none was sent' },
  4: { name: 'NOTIMP', code: 'DNS_UPDATE_NOTIMP', hint: 'the server does not implement DNS UPDATE' },
  5: {
    name: 'REFUSED',
    code: 'DNS_UPDATE_REFUSED',
    hint: 'the key is not allowed to update this name or zone; check allow-update / update-policy on the server',
  },
  6: { name: 'YXDOMAIN', code: 'DNS_UPDATE_YXDOMAIN', hint: 'a prerequisite failed, though none was sent' },
  7: { name: 'YXRRSET', code: 'DNS_UPDATE_YXRRSET', hint: 'a prerequisite failed, though none was sent' },
  8: { name: 'NXRRSET', code: 'DNS_UPDATE_NXRRSET', hint: 'a prerequisite failed, though none was sent' },
  9: {
    name: 'NOTAUTH',
    code: 'DNS_UPDATE_NOTAUTH',
    hint: 'the server is not authoritative (primary) for this zone; check the zone name and the server',
  },
  10: { name: 'NOTZONE', code: 'DNS_UPDATE_NOTZONE', hint: 'the name is not inside the zone' },
};

const TSIG_CODES: Record<string, DnsUpdateErrorCode> = {
  BADSIG: 'DNS_TSIG_BADSIG',
  BADKEY: 'DNS_TSIG_BADKEY',
  BADTIME: 'DNS_TSIG_BADTIME',
  BADALG: 'DNS_TSIG_BADALG',
};

interface Request {
  server: DnsServer;
  zone: string;
  change: TxtChange;
  key: PreparedKey;
  id: number;
  mac: Buffer;
}

function describe(r: Request): string {
  const host = isIP(r.server.host) === 6 ? `[${r.server.host}]` : r.server.host;
  return `DNS UPDATE (${r.change.action} TXT ${r.change.name} in zone ${r.zone}, key ${JSON.stringify(r.key.name)}) at ${host}:${r.server.port}`;
}

function buildMessage(zone: string, change: TxtChange, id: number): Buffer {
  const rdata = encodeTxtRdata(change.value);
  const update =
    change.action === 'add'
      ? { name: change.name, type: RRType.TXT, class: RRClass.IN, ttl: change.ttl ?? DEFAULT_TTL, rdata }
      : { name: change.name, type: RRType.TXT, class: RRClass.NONE, ttl: 0, rdata };
  return Buffer.concat([
    encodeHeader({ id, flags: Opcode.UPDATE << 11, counts: [1, 0, 1, 0] }),
    encodeQuestion(zone, RRType.SOA, RRClass.IN),
    encodeRecord(update),
  ]);
}

function validate(zoneIn: string, change: TxtChange): { zone: string; name: string } {
  const zone = normalizeName(zoneIn);
  const name = normalizeName(change.name);
  if (zone === '') throw new DnsUpdateError('DNS_INVALID_REQUEST', 'zone is empty');
  if (name !== zone && !name.endsWith(`.${zone}`)) {
    throw new DnsUpdateError('DNS_INVALID_REQUEST', `name ${name} is not inside zone ${zone}`);
  }
  if (change.action !== 'add' && change.action !== 'delete') {
    throw new DnsUpdateError('DNS_INVALID_REQUEST', `action must be 'add' or 'delete', got ${JSON.stringify(change.action)}`);
  }
  const ttl = change.ttl ?? DEFAULT_TTL;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) {
    throw new DnsUpdateError('DNS_INVALID_REQUEST', `ttl must be an integer from 0 to 2147483647, got ${ttl}`);
  }
  if (Buffer.byteLength(change.value, 'utf8') > 16_000) {
    throw new DnsUpdateError('DNS_INVALID_REQUEST', 'TXT value is longer than 16000 octets');
  }
  return { zone, name };
}

async function exchange(server: DnsServer, query: Buffer, opts: UpdateOptions): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const transport = opts.transport ?? 'tcp';
  if (!(timeoutMs > 0 && Number.isFinite(timeoutMs)) || (transport !== 'tcp' && transport !== 'udp')) {
    throw new DnsUpdateError('DNS_INVALID_REQUEST', `timeoutMs must be a positive number and transport 'tcp' or 'udp'`);
  }
  if (transport === 'tcp') return exchangeTcp(server, query, timeoutMs);
  const started = Date.now();
  const answer = await exchangeUdp(server, query, timeoutMs);
  const truncated = answer.length >= 4 && (answer.readUInt16BE(2) & 0x0200) !== 0;
  if (!truncated) return answer;
  return exchangeTcp(server, query, Math.max(1, timeoutMs - (Date.now() - started)));
}

function checkResponse(r: Request, response: Buffer): void {
  const msg = decodeMessage(response);
  if (msg.header.id !== r.id || !msg.qr || msg.opcode !== Opcode.UPDATE) {
    throw new DnsUpdateError(
      'DNS_MALFORMED_RESPONSE',
      `${describe(r)}: the answer is not a response to this update (id ${msg.header.id}, opcode ${msg.opcode})`,
    );
  }
  const last = msg.additional.at(-1);
  const tsigRecord = last?.type === RRType.TSIG ? last : undefined;
  let tsig;
  try {
    tsig = tsigRecord && decodeTsig(tsigRecord);
  } catch (err) {
    throw new DnsUpdateError('DNS_MALFORMED_RESPONSE', `${describe(r)}: malformed TSIG record in the response: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const rcode = RCODES[msg.rcode];
  const rcodeName = rcode?.name ?? (msg.rcode === 0 ? 'NOERROR' : `RCODE${msg.rcode}`);

  if (tsig && tsig.fields.error !== 0) {
    const tsigError = TSIG_ERRORS[tsig.fields.error] ?? `TSIG error ${tsig.fields.error}`;
    let hint = '';
    if (tsigError === 'BADSIG') hint = ": the TSIG secret does not match the server's";
    if (tsigError === 'BADKEY') hint = `: the server has no key ${JSON.stringify(r.key.name)} with algorithm ${r.key.algorithm}`;
    if (tsigError === 'BADTIME' && tsig.fields.other.length === 6) {
      const serverTime = tsig.fields.other.readUInt16BE(0) * 2 ** 32 + tsig.fields.other.readUInt32BE(2);
      hint = `: our clock and the server's differ by more than the fudge (server time ${new Date(serverTime * 1000).toISOString()})`;
    }
    if (tsigError === 'BADALG') hint = `: the server does not accept algorithm ${r.key.algorithm} for this key`;
    throw new DnsUpdateError(
      TSIG_CODES[tsigError] ?? 'DNS_TSIG_ERROR',
      `${describe(r)} rejected: rcode ${rcodeName}, TSIG error ${tsigError}${hint}`,
      { rcode: rcodeName, tsigError },
    );
  }
  if (msg.rcode !== 0) {
    // No need to trust a failure: the update did not happen either way.
    throw new DnsUpdateError(
      rcode?.code ?? 'DNS_UPDATE_FAILED',
      `${describe(r)} failed: rcode ${rcodeName}${rcode ? `: ${rcode.hint}` : ''}`,
      {
        rcode: rcodeName,
      },
    );
  }
  // Success is trusted only when the server signed it with our key.
  if (!tsig || !tsigRecord) {
    throw new DnsUpdateError(
      'DNS_TSIG_RESPONSE_UNSIGNED',
      `${describe(r)}: the server answered NOERROR without a TSIG signature; not trusting it`,
      {
        rcode: rcodeName,
      },
    );
  }
  const check = verifyResponse(response, tsigRecord.offset, tsig, r.mac, r.key, Date.now() / 1000);
  if (!check.ok) {
    const code = check.reason === 'badtime' ? 'DNS_TSIG_RESPONSE_BADTIME' : 'DNS_TSIG_RESPONSE_BADSIG';
    throw new DnsUpdateError(code, `${describe(r)}: the response's TSIG does not verify: ${check.detail}`, { rcode: rcodeName });
  }
}

/**
 * Adds or deletes one TXT record (`name`, `value`) in `zone` on `server`, signed with
 * `tsig`. Resolves once the server has answered NOERROR with a valid signature; rejects
 * with a DnsUpdateError otherwise.
 */
export async function updateTxt(
  server: DnsServer,
  tsig: TsigKey,
  zone: string,
  change: TxtChange,
  opts: UpdateOptions = {},
): Promise<void> {
  const names = validate(zone, change);
  const key = prepareKey(tsig);
  const id = randomInt(0, 0x10000);
  const normalized = { ...change, name: names.name };
  const { signed, mac } = signRequest(buildMessage(names.zone, normalized, id), key, Date.now() / 1000);
  const r: Request = { server, zone: names.zone, change: normalized, key, id, mac };
  let response: Buffer;
  try {
    response = await exchange(server, signed, opts);
  } catch (err) {
    if (err instanceof DnsUpdateError) throw new DnsUpdateError(err.code, `${describe(r)}: ${err.message}`, { cause: err.cause });
    throw err;
  }
  checkResponse(r, response);
}
