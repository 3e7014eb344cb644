// Where a rotation's state lives: an Opaque Secret `<ca secretName>-ca-rotation` beside the
// issuer's CA Secret (a directory under the data dir in local mode), through the engine's
// persister. It holds the new CA's private key until the Reissue phase moves it into the CA
// Secret, so it is a Secret and never served: none of its keys is a TLS data key.

import type { CertificatePersister } from '../persisters/persister.js';
import type { IssuerResource } from '../resources.js';
import { parseRotationState, type RotationState } from './rotation-state.js';

const STATE_KEY = 'rotation.json';
const KEY_KEY = 'next-ca.key';

export type CaIssuerResource = IssuerResource & { spec: { type: 'ca' } };

export function rotationSecretName(issuer: CaIssuerResource): string {
  return `${issuer.spec.secretName}-ca-rotation`;
}

export interface RotationRecord {
  state: RotationState;
  /** The new CA's private key (PEM); dropped once it is in the CA Secret. */
  newKeyPem: string | undefined;
}

export async function readRotation(
  persister: Pick<CertificatePersister, 'readSecret'>,
  issuer: CaIssuerResource,
): Promise<RotationRecord | undefined> {
  const secret = await persister.readSecret(issuer.secretNamespace, rotationSecretName(issuer));
  const state = parseRotationState(secret?.data[STATE_KEY]);
  return state ? { state, newKeyPem: secret?.data[KEY_KEY] } : undefined;
}

export async function writeRotation(
  persister: Pick<CertificatePersister, 'writeSecret'>,
  issuer: CaIssuerResource,
  record: RotationRecord,
): Promise<void> {
  const data: Record<string, string> = { [STATE_KEY]: `${JSON.stringify(record.state, null, 1)}\n` };
  if (record.newKeyPem) data[KEY_KEY] = record.newKeyPem;
  await persister.writeSecret(issuer.secretNamespace, rotationSecretName(issuer), {
    data,
    annotations: { 'envoy-sds.io/ca-rotation-of': record.state.issuer },
  });
}
