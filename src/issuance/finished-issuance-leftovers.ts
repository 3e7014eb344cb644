// State a finished issuance leaves behind when the process dies between writing the
// Secret and deleting its in-progress state (next key, ACME order): recognised on the
// next attempt and discarded, so that attempt starts over with a new key and a new order
// instead of resuming the finished order and saving the served certificate again.

import { createHash } from 'node:crypto';
import { certificatePublicKey, certificatesFromPem, parsePrivateKeyPem, publicKeyDer } from '../pki/index.js';
import type { Logger } from '../observability/logger.js';
import type { CertificatePersister, PersistedSecret } from './persisters/persister.js';
import type { CertificateResource } from './resources.js';
import { ANNOTATIONS } from './secret-facts.js';

/**
 * - A next key whose public key is the served certificate's was that issuance's key
 *   (a new attempt always persists a new one first): deleted.
 * - An order whose URL the served Secret names (`envoy-sds.io/acme-order-url`) produced
 *   it: deleted. For Secrets written before that annotation existed, an order for the
 *   served key counts as finished unless the key is kept on purpose (rotationPolicy Never).
 * Returns what was discarded (for the log and tests).
 */
export async function discardFinishedIssuanceLeftovers(
  cert: CertificateResource,
  served: PersistedSecret | undefined,
  persister: CertificatePersister,
  logger: Logger,
): Promise<Array<'next-key' | 'order'>> {
  const servedSpki = servedPublicKeySha256(served);
  if (!served || !servedSpki) return [];
  const discarded: Array<'next-key' | 'order'> = [];
  const pending = await persister.readNextPrivateKey(cert);
  if (pending !== undefined && privateKeySha256(pending) === servedSpki) {
    await persister.deleteNextPrivateKey(cert);
    discarded.push('next-key');
  }
  const order = await persister.readOrder(cert);
  if (order) {
    const named = served.annotations[ANNOTATIONS.orderUrl];
    const finished =
      named !== undefined
        ? named === order.orderUrl
        : order.publicKeySha256 === servedSpki && cert.spec.privateKey.rotationPolicy !== 'Never';
    if (finished) {
      await persister.deleteOrder(cert);
      discarded.push('order');
    }
  }
  if (discarded.length > 0) {
    logger.info(
      { secret: cert.spec.secretName, discarded },
      'state of an issuance that already completed was left behind (a crash); discarded',
    );
  }
  return discarded;
}

function servedPublicKeySha256(served: PersistedSecret | undefined): string | undefined {
  const pem = served?.data['tls.crt'];
  if (!pem) return undefined;
  try {
    const leaf = certificatesFromPem(pem)[0];
    return leaf ? sha256(publicKeyDer(certificatePublicKey(leaf))) : undefined;
  } catch {
    return undefined;
  }
}

function privateKeySha256(pem: string): string | undefined {
  try {
    return sha256(publicKeyDer(parsePrivateKeyPem(pem)));
  } catch {
    return undefined;
  }
}

function sha256(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}
