import protobuf from 'protobufjs';

/**
 * Hand-assembled protobuf fields. Responses are concatenations of fields encoded ahead
 * of time (per secret version) and a few per-stream fields (the nonce): protobuf allows
 * fields in any order, so the bytes of a secret are encoded once for every stream.
 */
export function bytesField(fieldNumber: number, value: Uint8Array): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((fieldNumber << 3) | 2).bytes(value);
  return Buffer.from(w.finish());
}

export function stringField(fieldNumber: number, value: string): Buffer {
  if (value === '') return EMPTY; // proto3 omits empty strings
  const w = protobuf.Writer.create();
  w.uint32((fieldNumber << 3) | 2).string(value);
  return Buffer.from(w.finish());
}

const EMPTY = Buffer.alloc(0);
