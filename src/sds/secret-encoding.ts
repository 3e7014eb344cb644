import type { StoredSecret } from '../store/secret-material.js';
import { SECRET_TYPE_URL } from './type-urls.js';
import { encodeMessage, messageField, stringField, type WireField } from './wire.js';

/** Pre-encoded pieces of the responses that carry one (secret, version). */
export interface EncodedSecret {
  readonly name: string;
  readonly version: string;
  /** DiscoveryResponse field 2: the Secret wrapped in an Any. */
  readonly sotwResourceField: Buffer;
  /** A whole single-secret DiscoveryResponse except its nonce. */
  readonly sotwBody: Buffer;
  /** DeltaDiscoveryResponse field 2: a Resource{name, version, Any}. */
  readonly deltaResourceField: Buffer;
}

const cache = new WeakMap<StoredSecret, EncodedSecret>();

/** Encodes once per stored secret object (a new version is a new object). */
export function encodeSecret(secret: StoredSecret): EncodedSecret {
  let encoded = cache.get(secret);
  if (!encoded) {
    encoded = new Encoded(secret);
    cache.set(secret, encoded);
  }
  return encoded;
}

/** type_url is field 4 in both DiscoveryResponse and DeltaDiscoveryResponse. */
export const TYPE_URL_FIELD = stringField(4, SECRET_TYPE_URL);
class Encoded implements EncodedSecret {
  readonly name: string;
  readonly version: string;
  readonly sotwResourceField: Buffer;
  readonly sotwBody: Buffer;
  #delta: Buffer | undefined;

  constructor(secret: StoredSecret) {
    this.name = secret.name;
    this.version = secret.version;
    // DiscoveryResponse{version_info, resources: [Any{type_url, value: Secret}], type_url},
    // in one pass and one allocation.
    const { bytes, offsets } = encodeMessage([
      { field: 1, text: secret.version },
      {
        field: 2,
        fields: [
          { field: 1, text: SECRET_TYPE_URL },
          { field: 2, fields: secretFields(secret) },
        ],
      },
      { field: 4, text: SECRET_TYPE_URL },
    ]);
    this.sotwBody = bytes;
    this.sotwResourceField = bytes.subarray(offsets[1], offsets[2]);
  }

  /** Built on first use: most deployments use one protocol, not both. */
  get deltaResourceField(): Buffer {
    // DiscoveryResponse.resources and Resource.resource are both field 2: one encoding.
    this.#delta ??= ownBuffer([messageField(2, [stringField(3, this.name), stringField(1, this.version), this.sotwResourceField])]);
    return this.#delta;
  }
}

/**
 * Long-lived bytes get their own allocation: a slice of Node's shared 8 KB buffer pool
 * would keep the whole slab alive for as long as the secret version lives (measured:
 * about 10 KB of RSS per secret, most of the per-stream memory in the benchmark).
 */
function ownBuffer(parts: readonly Buffer[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafeSlow(len);
  let o = 0;
  for (const p of parts) {
    p.copy(out, o);
    o += p.length;
  }
  return out;
}

/** SubjectAltNameMatcher.SanType values of the upstream proto. */
const SAN_TYPE = { DNS: 2, URI: 3 } as const;

/**
 * The fields of the envoy.extensions.transport_sockets.tls.v3.Secret message (field
 * numbers from proto/; every DataSource sets inline_bytes, field 2, so Envoy never sees
 * one without a specifier).
 */
function secretFields(secret: StoredSecret): WireField[] {
  const inline = (field: number, data: string | Uint8Array): WireField => ({
    field,
    fields: [typeof data === 'string' ? { field: 2, text: data } : { field: 2, bytes: data }],
  });
  const m = secret.material;
  const name: WireField = { field: 1, text: secret.name };
  if (m.kind === 'tls_certificate') {
    const tls = [inline(1, m.certificateChain), inline(2, m.privateKey)];
    if (m.ocspStaple && m.ocspStaple.length > 0) tls.push(inline(4, m.ocspStaple));
    return [name, { field: 2, fields: tls }];
  }
  const vc = [inline(1, m.trustedCa)];
  if (m.crl) vc.push(inline(7, m.crl));
  // match_typed_subject_alt_names (15): SubjectAltNameMatcher{san_type (1), matcher (2):
  // StringMatcher{exact (1)}}.
  for (const san of m.matchSubjectAltNames ?? []) {
    vc.push({
      field: 15,
      fields: [
        { field: 1, varint: SAN_TYPE[san.type] },
        { field: 2, fields: [{ field: 1, text: san.value }] },
      ],
    });
  }
  return [name, { field: 4, fields: vc }];
}
