import type { UnaryMethod } from '../sds/sds-service.js';

export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';

/** HealthCheckResponse{status: SERVING (1)} and {status: NOT_SERVING (2)}, encoded by hand. */
const SERVING = Buffer.from([0x08, 0x01]);
const NOT_SERVING = Buffer.from([0x08, 0x02]);

/**
 * HealthCheckRequest.service (field 1); other fields are skipped. A malformed message
 * throws, which the transport answers with INTERNAL.
 */
export function decodeHealthCheckRequest(bytes: Buffer): string {
  let service = '';
  let o = 0;
  const varint = (): number => {
    let n = 0;
    let shift = 0;
    for (;;) {
      if (o >= bytes.length || shift > 28) throw new Error('bad varint');
      const b = bytes[o++]!;
      n |= (b & 0x7f) << shift;
      if (b < 0x80) return n >>> 0;
      shift += 7;
    }
  };
  while (o < bytes.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 2) {
      const len = varint();
      if (o + len > bytes.length) throw new Error('truncated');
      if (tag >>> 3 === 1) service = bytes.toString('utf8', o, o + len);
      o += len;
    } else if (wire === 1) o += 8;
    else if (wire === 5) o += 4;
    else throw new Error('unsupported wire type');
  }
  if (o > bytes.length) throw new Error('truncated');
  return service;
}

/**
 * grpc.health.v1 Check, for Kubernetes `grpc:` probes on an h2c listener (the kubelet
 * presents no certificate, so no identity is asked for). The server as a whole ("") and
 * the SDS service answer with the same readiness as HTTP /readyz; other names are
 * NOT_FOUND, as the protocol asks.
 */
export function healthCheckMethod(ready: () => boolean): UnaryMethod<string> {
  return {
    kind: 'unary',
    decode: decodeHealthCheckRequest,
    serve: async (service) => {
      if (service !== '' && service !== 'envoy.service.secret.v3.SecretDiscoveryService') {
        return { reason: 'not_found', message: 'unknown service' };
      }
      return ready() ? SERVING : NOT_SERVING;
    },
  };
}
