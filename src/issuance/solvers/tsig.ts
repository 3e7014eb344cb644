// TSIG (RFC 8945): HMAC signatures on a request and verification of the response.
//
// Request MAC  = HMAC(message without TSIG, original ID, ARCOUNT without TSIG
//                     || TSIG variables)                             section 4.3.3
// Response MAC = HMAC(request MAC length (2 octets) || request MAC
//                     || response without TSIG || TSIG variables)    section 4.3.1
// TSIG variables = key name, class ANY, TTL 0, algorithm name (both names canonical,
// uncompressed), time signed (48 bits), fudge, error, other len, other data.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { DnsUpdateError } from './dns-update-error.js';
import { encodeName, encodeRecord, normalizeName, RRClass, RRType, type DecodedRecord } from './dns-wire.js';

export interface TsigKey {
  /** Key name as configured on the server (e.g. `acme-update`). */
  name: string;
  /** `hmac-sha256` (required by RFC 8945), `hmac-sha384`, `hmac-sha512` or `hmac-sha1`. */
  algorithm: string;
  /** The shared secret, base64 as in a BIND `key` statement. */
  secret: string;
}

const HASHES: Record<string, string> = {
  'hmac-sha1': 'sha1',
  'hmac-sha224': 'sha224',
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
};

export const TSIG_ERRORS: Record<number, string> = {
  16: 'BADSIG',
  17: 'BADKEY',
  18: 'BADTIME',
  19: 'BADMODE',
  20: 'BADNAME',
  21: 'BADALG',
  22: 'BADTRUNC',
};

export const DEFAULT_FUDGE_SECONDS = 300;

/** A key checked and decoded once: names canonical, secret as bytes. */
export interface PreparedKey {
  name: string;
  algorithm: string;
  hash: string;
  secret: Buffer;
}

export function prepareKey(key: TsigKey): PreparedKey {
  const algorithm = key.algorithm.toLowerCase().replace(/\.$/, '');
  const hash = HASHES[algorithm];
  if (hash === undefined) {
    throw new DnsUpdateError(
      'DNS_INVALID_REQUEST',
      `unsupported TSIG algorithm ${JSON.stringify(key.algorithm)} for key ${JSON.stringify(key.name)}; use one of ${Object.keys(HASHES).join(', ')}`,
    );
  }
  const name = normalizeName(key.name);
  if (name === '') throw new DnsUpdateError('DNS_INVALID_REQUEST', 'TSIG key name is empty');
  const secret = Buffer.from(key.secret, 'base64');
  // Buffer.from(..., 'base64') skips bad characters silently: re-encode to be sure.
  const canonical = (s: string) => s.replace(/[\s=]/g, '').replace(/-/g, '+').replace(/_/g, '/');
  if (secret.length === 0 || canonical(secret.toString('base64')) !== canonical(key.secret)) {
    throw new DnsUpdateError('DNS_INVALID_REQUEST', `the TSIG secret of key ${JSON.stringify(key.name)} is not valid base64`);
  }
  return { name, algorithm, hash, secret };
}

interface TsigFields {
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
}

function uint48(value: number): Buffer {
  const buf = Buffer.alloc(6);
  buf.writeUInt16BE(Math.floor(value / 2 ** 32), 0);
  buf.writeUInt32BE(value % 2 ** 32, 2);
  return buf;
}

function variables(key: PreparedKey, fields: Omit<TsigFields, 'mac' | 'originalId'>): Buffer {
  const classTtl = Buffer.alloc(6);
  classTtl.writeUInt16BE(RRClass.ANY, 0);
  classTtl.writeUInt32BE(0, 2);
  const tail = Buffer.alloc(6);
  tail.writeUInt16BE(fields.fudge, 0);
  tail.writeUInt16BE(fields.error, 2);
  tail.writeUInt16BE(fields.other.length, 4);
  return Buffer.concat([encodeName(key.name), classTtl, encodeName(key.algorithm), uint48(fields.timeSigned), tail, fields.other]);
}

function hmac(key: PreparedKey, parts: Buffer[]): Buffer {
  const h = createHmac(key.hash, key.secret);
  for (const part of parts) h.update(part);
  return h.digest();
}

function encodeTsigRdata(key: PreparedKey, f: TsigFields): Buffer {
  const mid = Buffer.alloc(4);
  mid.writeUInt16BE(f.fudge, 0);
  mid.writeUInt16BE(f.mac.length, 2);
  const tail = Buffer.alloc(6);
  tail.writeUInt16BE(f.originalId, 0);
  tail.writeUInt16BE(f.error, 2);
  tail.writeUInt16BE(f.other.length, 4);
  return Buffer.concat([encodeName(key.algorithm), uint48(f.timeSigned), mid, f.mac, tail, f.other]);
}

/**
 * Signs a complete message whose ARCOUNT does not yet count the TSIG record. Returns the
 * message with the TSIG record appended (ARCOUNT + 1) and the MAC, which the response's
 * MAC covers.
 */
export function signRequest(
  message: Buffer,
  key: PreparedKey,
  nowSeconds: number,
  fudge = DEFAULT_FUDGE_SECONDS,
): { signed: Buffer; mac: Buffer } {
  const fields = { timeSigned: Math.floor(nowSeconds), fudge, error: 0, other: Buffer.alloc(0) };
  const mac = hmac(key, [message, variables(key, fields)]);
  const rr = encodeRecord({
    name: key.name,
    type: RRType.TSIG,
    class: RRClass.ANY,
    ttl: 0,
    rdata: encodeTsigRdata(key, { ...fields, mac, originalId: message.readUInt16BE(0) }),
  });
  const signed = Buffer.concat([message, rr]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { signed, mac };
}

export interface ResponseTsig {
  keyName: string;
  algorithm: string;
  fields: TsigFields;
}

/** Decodes the RDATA of a TSIG record; throws RangeError when it is short or malformed. */
export function decodeTsig(rr: DecodedRecord): ResponseTsig {
  const rdata = rr.rdata;
  // The algorithm name is never compressed (RFC 8945 section 4.2).
  const labels: string[] = [];
  let offset = 0;
  for (;;) {
    const len = rdata.readUInt8(offset);
    if (len > 63) throw new RangeError('compressed or bad TSIG algorithm name');
    offset += 1;
    if (len === 0) break;
    if (offset + len > rdata.length) throw new RangeError('TSIG algorithm name past end of record');
    labels.push(rdata.toString('latin1', offset, offset + len).toLowerCase());
    offset += len;
  }
  const timeSigned = rdata.readUInt16BE(offset) * 2 ** 32 + rdata.readUInt32BE(offset + 2);
  const fudge = rdata.readUInt16BE(offset + 6);
  const macSize = rdata.readUInt16BE(offset + 8);
  const macStart = offset + 10;
  if (macStart + macSize + 6 > rdata.length) throw new RangeError('TSIG MAC past end of record');
  const mac = Buffer.from(rdata.subarray(macStart, macStart + macSize));
  const originalId = rdata.readUInt16BE(macStart + macSize);
  const error = rdata.readUInt16BE(macStart + macSize + 2);
  const otherLen = rdata.readUInt16BE(macStart + macSize + 4);
  const otherStart = macStart + macSize + 6;
  if (otherStart + otherLen !== rdata.length) throw new RangeError('TSIG RDATA length mismatch');
  const other = Buffer.from(rdata.subarray(otherStart));
  return { keyName: rr.name, algorithm: labels.join('.'), fields: { timeSigned, fudge, mac, originalId, error, other } };
}

export type ResponseCheck = { ok: true } | { ok: false; reason: 'key' | 'badsig' | 'badtime'; detail: string };

/**
 * Verifies the TSIG of a response whose TSIG record starts at `tsigOffset` (the last
 * record of the message). Only meaningful when the TSIG error is 0: BADSIG and BADKEY
 * responses carry no MAC at all (section 5.3.2).
 */
export function verifyResponse(
  response: Buffer,
  tsigOffset: number,
  tsig: ResponseTsig,
  requestMac: Buffer,
  key: PreparedKey,
  nowSeconds: number,
): ResponseCheck {
  if (tsig.keyName !== key.name || tsig.algorithm !== key.algorithm) {
    return {
      ok: false,
      reason: 'key',
      detail: `response signed with key ${JSON.stringify(tsig.keyName)} (${tsig.algorithm}), expected ${JSON.stringify(key.name)} (${key.algorithm})`,
    };
  }
  const unsigned = Buffer.from(response.subarray(0, tsigOffset));
  unsigned.writeUInt16BE(tsig.fields.originalId, 0);
  unsigned.writeUInt16BE(unsigned.readUInt16BE(10) - 1, 10);
  const requestMacLength = Buffer.alloc(2);
  requestMacLength.writeUInt16BE(requestMac.length, 0);
  const expected = hmac(key, [requestMacLength, requestMac, unsigned, variables(key, tsig.fields)]);
  if (tsig.fields.mac.length !== expected.length || !timingSafeEqual(tsig.fields.mac, expected)) {
    return {
      ok: false,
      reason: 'badsig',
      detail: `response MAC (${tsig.fields.mac.length} octets) does not match the one computed with key ${JSON.stringify(key.name)}`,
    };
  }
  const skew = Math.abs(Math.floor(nowSeconds) - tsig.fields.timeSigned);
  if (skew > tsig.fields.fudge) {
    return { ok: false, reason: 'badtime', detail: `response signed ${skew} s away from our clock, fudge is ${tsig.fields.fudge} s` };
  }
  return { ok: true };
}
