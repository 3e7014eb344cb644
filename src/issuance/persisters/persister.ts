// Where the engine keeps what it must not lose: issued Secrets, the next private key
// (written before its CSR leaves the process), an in-progress ACME order, and each
// Certificate's status. The file persister keeps them in the data directory; a
// Kubernetes persister (Secrets, the Certificate's status subresource) implements the
// same interface.
//
// Contract: every write is durable and atomic per item when it resolves (a reader sees
// the old value or the new one), and private keys are readable by the owner only.

import type * as z from 'zod';
import type { CertificateStatus } from '../certificate-status.js';
import type { IssuerStatus } from '../issuer-status.js';
import type { CertificateResource, IssuerResource } from '../resources.js';
import type { orderState } from '../schema/status.js';
import type { PersistedSecret } from '../secret-facts.js';

export type { PersistedSecret } from '../secret-facts.js';

/** An ACME order placed for a certificate and not yet finished. */
export type OrderState = z.output<typeof orderState>;

/** Paths of a Secret's files, for a persister whose output the file source can watch. */
export interface SecretFiles {
  certificateChainFile: string;
  privateKeyFile: string;
  caFile: string;
}

/**
 * writeSecret refused: the Secret already holds this revision or a later one: another writer issued
 * first (a persister that can see concurrent writers throws it; the controller then looks again).
 */
export class SecretSupersededError extends Error {
  readonly code = 'SECRET_SUPERSEDED';
  constructor(
    readonly secret: string,
    readonly held: number,
    readonly attempted: number,
  ) {
    super(`Secret ${secret} already holds revision ${held}; revision ${attempted} is not written over it`);
    this.name = 'SecretSupersededError';
  }
}

export interface CertificatePersister {
  /** Undefined when the Secret does not exist (or holds no data). */
  readSecret(namespace: string, name: string): Promise<PersistedSecret | undefined>;
  /** Replaces the Secret's data and annotations; data keys absent from `secret` are removed. */
  writeSecret(namespace: string, name: string, secret: PersistedSecret): Promise<void>;

  readNextPrivateKey(cert: CertificateResource): Promise<string | undefined>;
  writeNextPrivateKey(cert: CertificateResource, pem: string): Promise<void>;
  deleteNextPrivateKey(cert: CertificateResource): Promise<void>;

  readOrder(cert: CertificateResource): Promise<OrderState | undefined>;
  writeOrder(cert: CertificateResource, order: OrderState): Promise<void>;
  deleteOrder(cert: CertificateResource): Promise<void>;

  readStatus(cert: CertificateResource): Promise<CertificateStatus | undefined>;
  writeStatus(cert: CertificateResource, status: CertificateStatus): Promise<void>;

  /** Where issuers have a status of their own (custom resources): writes it. Others keep it in memory. */
  writeIssuerStatus?(issuer: IssuerResource, status: IssuerStatus): Promise<void>;

  /**
   * When Secrets are files another component serves (local mode): their paths. Must be
   * callable before start and do only cheap, idempotent preparation.
   */
  secretFiles?(namespace: string, name: string): SecretFiles;
}
