import type { StoredSecret } from '../store/secret-material.js';
import { SECRET_TYPE_URL } from './type-urls.js';
import { bytesField, messageField, stringField } from './wire.js';

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
/** google.protobuf.Any.type_url is field 1. */
const TYPE_URL_IN_ANY = stringField(1, SECRET_TYPE_URL);

class Encoded implements EncodedSecret {
  readonly name: string;
  readonly version: string;
  readonly sotwResourceField: Buffer;
  readonly sotwBody: Buffer;
  #delta: Buffer | undefined;

  constructor(secret: StoredSecret) {
    this.name = secret.name;
    this.version = secret.version;
    const any = Buffer.concat([TYPE_URL_IN_ANY, bytesField(2, encodeSecretMessage(secret))]);
    const version = stringField(1, secret.version);
    const resource = bytesField(2, any);
    this.sotwBody = ownBuffer([version, resource, TYPE_URL_FIELD]);
    this.sotwResourceField = this.sotwBody.subarray(version.length, version.length + resource.length);
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

/**
 * The envoy.extensions.transport_sockets.tls.v3.Secret message, encoded by hand (field
 * numbers from proto/; every DataSource sets inline_bytes, field 2, so Envoy never sees
 * one without a specifier).
 */
function encodeSecretMessage(secret: StoredSecret): Buffer {
  const inline = (text: string | Buffer) => bytesField(2, typeof text === 'string' ? Buffer.from(text) : text);
  const m = secret.material;
  const name = stringField(1, secret.name);
  if (m.kind === 'tls_certificate') {
    const tls = [bytesField(1, inline(m.certificateChain)), bytesField(2, inline(m.privateKey))];
    if (m.ocspStaple && m.ocspStaple.length > 0) tls.push(bytesField(4, inline(m.ocspStaple)));
    return Buffer.concat([name, messageField(2, tls)]);
  }
  const vc = [bytesField(1, inline(m.trustedCa))];
  if (m.crl) vc.push(bytesField(7, inline(m.crl)));
  return Buffer.concat([name, messageField(4, vc)]);
}
