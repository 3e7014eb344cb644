// The ACME account of an issuer: its key lives in the Secret named by
// privateKeySecretRef (created once, persisted before the account is registered, reused
// ever after) and the account URL is recorded on that Secret next to the server it
// belongs to. With the URL known, no newAccount request is sent again: Pebble -strict
// and some CAs refuse acme-client's re-registration update, and it costs a round trip.

import * as acme from 'acme-client';
import { encodePrivateKeyPem, generatePrivateKey } from '../../pki/index.js';
import type { Logger } from '../../observability/logger.js';
import type { CertificatePersister } from '../persisters/persister.js';
import type { AcmeIssuerSpec, IssuerResource } from '../resources.js';
import { IssuerNotReadyError } from '../issuers/issuer.js';

export const ACCOUNT_ANNOTATIONS = {
  server: 'envoy-sds.io/acme-server',
  accountUrl: 'envoy-sds.io/acme-account-url',
} as const;

export interface AcmeAccount {
  client: acme.Client;
  accountUrl: string;
}

export async function ensureAccount(
  issuer: IssuerResource,
  spec: AcmeIssuerSpec,
  persister: CertificatePersister,
  logger: Logger,
): Promise<AcmeAccount> {
  const ns = issuer.secretNamespace;
  const ref = spec.privateKeySecretRef;
  const secret = await persister.readSecret(ns, ref.name);
  let keyPem = secret?.data[ref.key];
  let data = { ...(secret?.data ?? {}) };
  let generated = false;
  if (keyPem === undefined) {
    if (spec.disableAccountKeyGeneration) {
      throw new IssuerNotReadyError(
        `ACME account key Secret ${ns}/${ref.name} (key "${ref.key}") does not exist and disableAccountKeyGeneration is set`,
      );
    }
    keyPem = encodePrivateKeyPem(await generatePrivateKey({ algorithm: 'ECDSA', size: 256 }), 'PKCS8');
    data = { ...data, [ref.key]: keyPem };
    // Persisted before registration: an account is never created for a key we could lose.
    await persister.writeSecret(ns, ref.name, { data, annotations: {} });
    generated = true;
    logger.info({ secret: `${ns}/${ref.name}` }, 'created ACME account key'); // the logger carries the issuer
  }

  const annotations = secret?.annotations ?? {};
  const known = annotations[ACCOUNT_ANNOTATIONS.server] === spec.server ? annotations[ACCOUNT_ANNOTATIONS.accountUrl] : undefined;
  const eab = await externalAccountBinding(issuer, spec, persister);
  const client = new acme.Client({
    directoryUrl: spec.server,
    accountKey: keyPem,
    ...(known ? { accountUrl: known } : {}),
    ...(eab ? { externalAccountBinding: eab } : {}),
  });
  if (known) return { client, accountUrl: known };

  const contact = spec.email ? [`mailto:${spec.email}`] : undefined;
  let registered = false;
  if (!generated) {
    // A key without a recorded URL (copied in, or the server changed): look the account up.
    try {
      await client.createAccount({ onlyReturnExisting: true });
      registered = true;
    } catch {
      // accountDoesNotExist: register below
    }
  }
  if (!registered) await client.createAccount({ termsOfServiceAgreed: true, ...(contact ? { contact } : {}) });
  const accountUrl = client.getAccountUrl();
  await persister.writeSecret(ns, ref.name, {
    data,
    annotations: { ...annotations, [ACCOUNT_ANNOTATIONS.server]: spec.server, [ACCOUNT_ANNOTATIONS.accountUrl]: accountUrl },
  });
  logger.info({ accountUrl }, 'ACME account registered');
  return { client, accountUrl };
}

/** Forgets the recorded account URL, so the next attempt looks the account up again. */
export async function forgetAccountUrl(issuer: IssuerResource, spec: AcmeIssuerSpec, persister: CertificatePersister): Promise<void> {
  const ref = spec.privateKeySecretRef;
  const secret = await persister.readSecret(issuer.secretNamespace, ref.name);
  if (!secret) return;
  const { [ACCOUNT_ANNOTATIONS.accountUrl]: _dropped, ...rest } = secret.annotations;
  void _dropped;
  await persister.writeSecret(issuer.secretNamespace, ref.name, { data: secret.data, annotations: rest });
}

async function externalAccountBinding(
  issuer: IssuerResource,
  spec: AcmeIssuerSpec,
  persister: CertificatePersister,
): Promise<{ kid: string; hmacKey: string } | undefined> {
  const eab = spec.externalAccountBinding;
  if (!eab) return undefined;
  const secret = await persister.readSecret(issuer.secretNamespace, eab.keySecretRef.name);
  const hmacKey = secret?.data[eab.keySecretRef.key]?.trim();
  if (!hmacKey)
    throw new IssuerNotReadyError(
      `external account binding Secret ${issuer.secretNamespace}/${eab.keySecretRef.name} (key "${eab.keySecretRef.key}") does not exist`,
    );
  return { kid: eab.keyID, hmacKey };
}
