/**
 * Header rules of gRPC over HTTP/2 (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
 */

/** `application/grpc` and `application/grpc+proto`, with or without parameters. */
export function isGrpcContentType(value: string | undefined): boolean {
  if (!value) return false;
  if (value === 'application/grpc') return true; // what every client we know sends
  const type = value.split(';')[0]!.trim().toLowerCase();
  return type === 'application/grpc' || type === 'application/grpc+proto';
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * `grpc-timeout` in milliseconds: up to 8 digits and a unit (H M S m u n). Undefined when
 * absent; NaN when malformed (the call is refused).
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return NaN;
  return Number(m[1]) * TIMEOUT_UNITS[m[2]!]!;
}

/**
 * `grpc-message` is percent-encoded: bytes outside printable ASCII (0x20-0x7E) and '%'
 * itself, over the UTF-8 encoding of the message.
 */
export function encodeGrpcMessage(message: string): string {
  const bytes = Buffer.from(message, 'utf8');
  let out = '';
  for (const b of bytes) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}
