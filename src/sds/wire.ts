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
