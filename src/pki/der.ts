/**
 * Minimal DER writer and reader, internal to the toolkit.
 *
 * Why not @peculiar/asn1-schema: building a certificate through it costs ~3 ms of
 * main-thread JavaScript, which caps issuance near 250 certificates/second. The
 * handful of structures we emit (TBSCertificate, CertificationRequestInfo and a few
 * extensions) are written here directly in microseconds.
 *
 * The reader is for the few fields we need (./certificate-fields.ts). It checks
 * every length against its container and throws a plain Error on malformed input;
 * callers turn that into a PkiError. It is deliberately not a validator: what the
 * store's door accepts must also parse in OpenSSL (node's X509Certificate).
 */
import { PkiError } from './errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------- writer

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with a single-byte tag. */
export function tlv(tag: number, content: Uint8Array | readonly Uint8Array[]): Buffer {
  const parts = content instanceof Uint8Array ? [content] : content;
  let length = 0;
  for (const p of parts) length += p.length;
  return Buffer.concat([Buffer.from([tag]), lengthBytes(length), ...parts]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, items);

/** DER SET OF: members are sorted by their encodings. */
export function setOf(items: readonly Uint8Array[]): Buffer {
  return tlv(
    TAG.SET,
    [...items].sort((a, b) => Buffer.compare(a, b)),
  );
}

/** Context-specific tag [n], constructed (EXPLICIT or IMPLICIT SEQUENCE) or primitive. */
export function contextTag(n: number, content: Uint8Array | readonly Uint8Array[], constructed: boolean): Buffer {
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

export const derNull = (): Buffer => Buffer.from([TAG.NULL, 0]);
export const derBooleanTrue = (): Buffer => Buffer.from([TAG.BOOLEAN, 1, 0xff]);
export const octetString = (bytes: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, bytes);

/** BIT STRING with `unusedBits` padding bits in the last byte. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  return tlv(TAG.BIT_STRING, [Buffer.from([unusedBits]), bytes]);
}

/** INTEGER from a non-negative safe integer. */
export function smallInteger(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative integer: ${n}`);
  const hex = n.toString(16);
  return positiveInteger(Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex'));
}

/** INTEGER from big-endian magnitude bytes, minimally encoded and kept positive. */
export function positiveInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  let body = Buffer.from(magnitude.subarray(start));
  if (body.length === 0) body = Buffer.from([0]);
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(TAG.INTEGER, body);
}

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(s);
  });
  const [first, second, ...rest] = arcs;
  if (first === undefined || second === undefined || first > 2n) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...chunk);
  }
  const encoded = tlv(TAG.OID, Buffer.from(out));
  oidCache.set(dotted, encoded);
  return encoded;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, Zulu. */
export function time(date: Date): Buffer {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new PkiError('INVALID_ARGUMENT', 'invalid date');
  const y = date.getUTCFullYear();
  if (y < 1950 || y > 9999) throw new PkiError('INVALID_ARGUMENT', `date year ${y} is outside 1950-9999`);
  const rest =
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds()) +
    'Z';
  return y < 2050
    ? tlv(TAG.UTC_TIME, Buffer.from(pad2(y % 100) + rest, 'latin1'))
    : tlv(TAG.GENERALIZED_TIME, Buffer.from(String(y) + rest, 'latin1'));
}

// ---------------------------------------------------------------- reader

export interface DerElement {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the element. */
  end: number;
}

/** Reads the TLV at `offset`. Throws a plain Error on malformed input. */
export function readElement(buf: Uint8Array, offset: number, limit = buf.length): DerElement {
  const tag = buf[offset];
  const first = buf[offset + 1];
  if (tag === undefined || first === undefined || offset + 2 > limit) throw new Error('DER: truncated header');
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: high tag numbers are not supported');
  let length: number;
  let contentStart = offset + 2;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw new Error('DER: unsupported length encoding');
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = buf[contentStart + i];
      if (b === undefined) throw new Error('DER: truncated length');
      length = length * 256 + b;
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > limit) throw new Error('DER: element overruns its container');
  return { tag, start: offset, contentStart, end };
}

/** The elements directly inside a constructed element. */
export function children(buf: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const el = readElement(buf, at, parent.end);
    out.push(el);
    at = el.end;
  }
  return out;
}

export function bytesOf(buf: Uint8Array, el: DerElement): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + el.start, el.end - el.start);
}

export function contentOf(buf: Uint8Array, el: DerElement): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + el.contentStart, el.end - el.contentStart);
}

/** Dotted text of an OBJECT IDENTIFIER's content bytes. */
export function readOid(content: Uint8Array): string {
  const arcs: bigint[] = [];
  let value = 0n;
  for (const byte of content) {
    value = (value << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0n;
    }
  }
  const [first = 0n, ...rest] = arcs;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...rest].join('.');
}

/** True when `der` is exactly one DER element with no trailing bytes. */
export function isSingleElement(der: Uint8Array): boolean {
  try {
    return readElement(der, 0).end === der.length;
  } catch {
    return false;
  }
}

/** The subject Name of a CertificationRequest, byte for byte. */
export function csrSubjectName(der: Uint8Array): Buffer {
  const outer = readElement(der, 0);
  const [info] = children(der, outer);
  if (!info) throw new Error('DER: empty structure');
  const [, subject] = children(der, info);
  if (!subject || subject.tag !== TAG.SEQUENCE) throw new Error('DER: subject not found');
  return bytesOf(der, subject);
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo (without the unused-bits byte). */
export function subjectPublicKeyBits(spki: Uint8Array): Buffer {
  const outer = readElement(spki, 0);
  const [, bits] = children(spki, outer);
  if (!bits || bits.tag !== TAG.BIT_STRING) throw new Error('DER: subjectPublicKey not found');
  return Buffer.from(spki.buffer, spki.byteOffset + bits.contentStart + 1, bits.end - bits.contentStart - 1);
}
