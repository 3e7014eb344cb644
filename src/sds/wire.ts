/**
 * Hand-assembled protobuf fields. Responses are concatenations of fields encoded ahead
 * of time (per secret version) and a few per-stream fields (the nonce): protobuf allows
 * fields in any order, so the bytes of a secret are encoded once for every stream.
 * Each field is one allocation: these run for every secret version and every push.
 * test/proto/wire-compat.test.ts decodes what they build with the upstream protos.
 */
const EMPTY = Buffer.alloc(0);

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[offset++] = n;
  return offset;
}

/** A length-delimited field (wire type 2) holding the concatenation of `parts`. */
export function messageField(fieldNumber: number, parts: readonly Uint8Array[]): Buffer {
  const tag = (fieldNumber << 3) | 2;
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(varintSize(tag) + varintSize(len) + len);
  let o = writeVarint(out, 0, tag);
  o = writeVarint(out, o, len);
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesField(fieldNumber: number, value: Uint8Array): Buffer {
  return messageField(fieldNumber, [value]);
}

export function stringField(fieldNumber: number, value: string): Buffer {
  if (value === '') return EMPTY; // proto3 omits empty strings
  const tag = (fieldNumber << 3) | 2;
  const len = Buffer.byteLength(value);
  const out = Buffer.allocUnsafe(varintSize(tag) + varintSize(len) + len);
  let o = writeVarint(out, 0, tag);
  o = writeVarint(out, o, len);
  out.write(value, o, 'utf8');
  return out;
}

/**
 * A message to encode in one pass: fields whose sizes are known before any byte is
 * written, so nested messages need no intermediate buffers (a secret version's bytes
 * are one allocation, not one per nesting level). Every field given is written, an
 * empty string too (a DataSource's inline_bytes must be present even when empty).
 */
export type WireField =
  | { readonly field: number; readonly varint: number }
  | { readonly field: number; readonly text: string }
  | { readonly field: number; readonly bytes: Uint8Array }
  | { readonly field: number; readonly fields: readonly WireField[] };

/** Content length of each nested message and text, computed once per encoding (a PEM is scanned once). */
type Sizes = Map<WireField, number>;

function contentSize(f: WireField, sizes: Sizes): number {
  if ('varint' in f) return varintSize(f.varint);
  if ('text' in f) {
    const n = Buffer.byteLength(f.text);
    sizes.set(f, n);
    return n;
  }
  if ('bytes' in f) return f.bytes.length;
  let n = 0;
  for (const c of f.fields) n += encodedSize(c, sizes);
  sizes.set(f, n);
  return n;
}

function encodedSize(f: WireField, sizes: Sizes): number {
  if ('varint' in f) return varintSize(f.field << 3) + varintSize(f.varint);
  const len = contentSize(f, sizes);
  return varintSize((f.field << 3) | 2) + varintSize(len) + len;
}

function writeField(out: Buffer, o: number, f: WireField, sizes: Sizes): number {
  // Wire type 0 (an enum): tag, then the value; no length.
  if ('varint' in f) return writeVarint(out, writeVarint(out, o, f.field << 3), f.varint);
  o = writeVarint(out, o, (f.field << 3) | 2);
  if ('text' in f) {
    const n = sizes.get(f)!;
    o = writeVarint(out, o, n);
    return o + out.write(f.text, o, n, 'utf8');
  }
  if ('bytes' in f) {
    o = writeVarint(out, o, f.bytes.length);
    out.set(f.bytes, o);
    return o + f.bytes.length;
  }
  o = writeVarint(out, o, sizes.get(f)!);
  for (const c of f.fields) o = writeField(out, o, c, sizes);
  return o;
}

/**
 * Encodes these fields (a message body) into one buffer of its own (not a slice of
 * Node's pool, which would keep an 8 KB slab alive as long as the bytes live). Also
 * returns where each top-level field starts, for callers that reuse a field's bytes.
 */
export function encodeMessage(fields: readonly WireField[]): { bytes: Buffer; offsets: number[] } {
  const sizes: Sizes = new Map();
  let total = 0;
  for (const f of fields) total += encodedSize(f, sizes);
  const out = Buffer.allocUnsafeSlow(total);
  const offsets: number[] = [];
  let o = 0;
  for (const f of fields) {
    offsets.push(o);
    o = writeField(out, o, f, sizes);
  }
  offsets.push(o);
  return { bytes: out, offsets };
}
