import type { StoredSecret } from '../store/secret-material.js';
import { sdsType } from './protos.js';
import { SECRET_TYPE_URL } from './type-urls.js';
import { bytesField, stringField } from './wire.js';

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
    encoded = build(secret);
    cache.set(secret, encoded);
  }
  return encoded;
}

/** type_url is field 4 in both DiscoveryResponse and DeltaDiscoveryResponse. */
export const TYPE_URL_FIELD = stringField(4, SECRET_TYPE_URL);

function build(secret: StoredSecret): EncodedSecret {
  const secretBytes = encodeSecretMessage(secret);
  const any = Buffer.concat([stringField(1, SECRET_TYPE_URL), bytesField(2, secretBytes)]);
  const sotwResourceField = bytesField(2, any);
  const resource = Buffer.concat([
    stringField(3, secret.name),
    stringField(1, secret.version),
    bytesField(2, any),
  ]);
  return {
    name: secret.name,
    version: secret.version,
    sotwResourceField,
    sotwBody: Buffer.concat([stringField(1, secret.version), sotwResourceField, TYPE_URL_FIELD]),
    deltaResourceField: bytesField(2, resource),
  };
}

/** The envoy.extensions.transport_sockets.tls.v3.Secret message for a stored secret. */
export function secretMessage(secret: StoredSecret): Record<string, unknown> {
  const m = secret.material;
  if (m.kind === 'tls_certificate') {
    const tls: Record<string, unknown> = {
      certificate_chain: { inline_bytes: Buffer.from(m.certificateChain) },
      private_key: { inline_bytes: Buffer.from(m.privateKey) },
    };
    if (m.ocspStaple && m.ocspStaple.length > 0) tls['ocsp_staple'] = { inline_bytes: m.ocspStaple };
    return { name: secret.name, tls_certificate: tls };
  }
  const vc: Record<string, unknown> = { trusted_ca: { inline_bytes: Buffer.from(m.trustedCa) } };
  if (m.crl) vc['crl'] = { inline_bytes: Buffer.from(m.crl) };
  return { name: secret.name, validation_context: vc };
}

function encodeSecretMessage(secret: StoredSecret): Uint8Array {
  const Secret = sdsType('envoy.extensions.transport_sockets.tls.v3.Secret');
  return Secret.encode(Secret.fromObject(secretMessage(secret))).finish();
}
