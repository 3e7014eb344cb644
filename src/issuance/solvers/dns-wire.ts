// DNS wire format (RFC 1035 section 4), only what a DNS UPDATE client needs: encode a
// message of uncompressed records, and decode a response far enough to read its header
// and its last additional record (where TSIG lives).

import { DnsUpdateError } from './dns-update-error.js';

export const RRType = { SOA: 6, TXT: 16, TSIG: 250 } as const;
export const RRClass = { IN: 1, NONE: 254, ANY: 255 } as const;
export const Opcode = { UPDATE: 5 } as const;

const HEADER_LENGTH = 12;
const MAX_NAME_WIRE_LENGTH = 255;
const MAX_LABEL_LENGTH = 63;
const MAX_CHARACTER_STRING = 255;
const LABEL_PATTERN = /^(\*|[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)$/;

export interface Header {
  id: number;
  /** QR, opcode, AA, TC, RD, RA, Z and RCODE packed as on the wire. */
  flags: number;
  counts: [number, number, number, number];
}

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
}

/** A record decoded from a message, with where it starts so a signature can exclude it. */
export interface DecodedRecord extends ResourceRecord {
  offset: number;
}

export interface DecodedMessage {
  header: Header;
  qr: boolean;
  opcode: number;
  tc: boolean;
  rcode: number;
  /** The additional section; TSIG, when present, is its last record. */
  additional: DecodedRecord[];
}

/**
 * Lower-cases a domain name, drops one trailing dot and checks it: letters, digits, `-`
 * and `_` (ACME's `_acme-challenge`), a leading `*` label, 1 to 63 octets a label, 255 on
 * the wire. Internationalised names must arrive as A-labels (punycode).
 */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase().replace(/\.$/, '');
  if (lower === '') return '';
  const labels = lower.split('.');
  labels.forEach((label, i) => {
    if (label.length === 0 || label.length > MAX_LABEL_LENGTH || !LABEL_PATTERN.test(label) || (label === '*' && i !== 0)) {
      throw new DnsUpdateError('DNS_INVALID_REQUEST', `invalid DNS name ${JSON.stringify(name)}: bad label ${JSON.stringify(label)}`);
    }
  });
  if (lower.length + 2 > MAX_NAME_WIRE_LENGTH) {
    throw new DnsUpdateError('DNS_INVALID_REQUEST', `invalid DNS name ${JSON.stringify(name)}: longer than 255 octets on the wire`);
  }
  return lower;
}

/** Encodes a normalized name uncompressed, which is also its canonical form for TSIG. */
export function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  if (name !== '') {
    for (const label of name.split('.')) {
      const bytes = Buffer.from(label, 'ascii');
      parts.push(Buffer.from([bytes.length]), bytes);
    }
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** TXT RDATA: the value as one or more character-strings of at most 255 octets. */
export function encodeTxtRdata(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  let offset = 0;
  do {
    const chunk = bytes.subarray(offset, offset + MAX_CHARACTER_STRING);
    parts.push(Buffer.from([chunk.length]), chunk);
    offset += MAX_CHARACTER_STRING;
  } while (offset < bytes.length);
  return Buffer.concat(parts);
}

export function encodeHeader(header: Header): Buffer {
  const buf = Buffer.alloc(HEADER_LENGTH);
  buf.writeUInt16BE(header.id, 0);
  buf.writeUInt16BE(header.flags, 2);
  header.counts.forEach((count, i) => buf.writeUInt16BE(count, 4 + 2 * i));
  return buf;
}

/** A question-shaped entry (RFC 2136 calls it the zone section): name, type, class. */
export function encodeQuestion(name: string, type: number, klass: number): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(klass, 2);
  return Buffer.concat([encodeName(name), tail]);
}

export function encodeRecord(rr: ResourceRecord): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(rr.class, 2);
  fixed.writeUInt32BE(rr.ttl, 4);
  fixed.writeUInt16BE(rr.rdata.length, 8);
  return Buffer.concat([encodeName(rr.name), fixed, rr.rdata]);
}

/** Reads a possibly compressed name; returns it lower-cased, without trailing dot. */
export function readName(buf: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let offset = start;
  let next = -1;
  let jumps = 0;
  for (;;) {
    const len = buf.readUInt8(offset);
    if ((len & 0xc0) === 0xc0) {
      const pointer = buf.readUInt16BE(offset) & 0x3fff;
      if (next < 0) next = offset + 2;
      if (++jumps > 64 || pointer >= buf.length) throw new RangeError('bad compression pointer');
      offset = pointer;
      continue;
    }
    if (len > MAX_LABEL_LENGTH) throw new RangeError('bad label length');
    if (len === 0) {
      if (next < 0) next = offset + 1;
      break;
    }
    if (offset + 1 + len > buf.length) throw new RangeError('label past end of message');
    labels.push(buf.toString('latin1', offset + 1, offset + 1 + len).toLowerCase());
    offset += 1 + len;
  }
  return { name: labels.join('.'), next };
}

function readRecord(buf: Buffer, offset: number): { rr: DecodedRecord; next: number } {
  const { name, next } = readName(buf, offset);
  const type = buf.readUInt16BE(next);
  const klass = buf.readUInt16BE(next + 2);
  const ttl = buf.readUInt32BE(next + 4);
  const rdlength = buf.readUInt16BE(next + 8);
  const rdataStart = next + 10;
  if (rdataStart + rdlength > buf.length) throw new RangeError('RDATA past end of message');
  const rdata = buf.subarray(rdataStart, rdataStart + rdlength);
  return { rr: { name, type, class: klass, ttl, rdata, offset }, next: rdataStart + rdlength };
}

/** Decodes a response; throws DNS_MALFORMED_RESPONSE when it does not parse. */
export function decodeMessage(buf: Buffer): DecodedMessage {
  try {
    const id = buf.readUInt16BE(0);
    const flags = buf.readUInt16BE(2);
    const counts: [number, number, number, number] = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)];
    let offset = HEADER_LENGTH;
    for (let i = 0; i < counts[0]; i++) offset = readName(buf, offset).next + 4;
    for (let i = 0; i < counts[1] + counts[2]; i++) offset = readRecord(buf, offset).next;
    const additional: DecodedRecord[] = [];
    for (let i = 0; i < counts[3]; i++) {
      const { rr, next } = readRecord(buf, offset);
      additional.push(rr);
      offset = next;
    }
    return {
      header: { id, flags, counts },
      qr: (flags & 0x8000) !== 0,
      opcode: (flags >> 11) & 0xf,
      tc: (flags & 0x0200) !== 0,
      rcode: flags & 0xf,
      additional,
    };
  } catch (err) {
    throw new DnsUpdateError('DNS_MALFORMED_RESPONSE', `malformed DNS response (${buf.length} bytes): ${(err as Error).message}`, {
      cause: err,
    });
  }
}
