// What every issuer backend does: turn a Certificate and its (already persisted) next
// private key into a certificate chain. Backends never write the result; the engine
// persists it, so the order "key, then request, then certificate" holds for all of them.

import type { KeyObject } from 'node:crypto';
import type { OrderStatus } from '../certificate-status.js';
import type { IssuerReadiness } from '../issuer-status.js';
import type { CertificateResource } from '../resources.js';

export interface IssueRequest {
  certificate: CertificateResource;
  privateKey: KeyObject;
  /** Taken after the key is generated: a local backend's notBefore. */
  now: Date;
  /** Aborted when the engine stops: give up at the next step, leaving persisted state as is. */
  signal: AbortSignal;
  /** Told of every change of an ACME order and its challenges (recorded in the status). */
  progress?: (order: OrderStatus) => Promise<void>;
}

export interface IssuedBundle {
  /** Leaf first, then intermediates; a self-signed root is left out (it goes to caPem). */
  chainPem: string;
  /** The CA to trust (`ca.crt`), when the backend knows it. */
  caPem: string | undefined;
}

export interface CertificateIssuer {
  issue(request: IssueRequest): Promise<IssuedBundle>;
  /** The issuer's Ready condition: can it issue now (its CA key pair, its ACME account)? Never throws. */
  readiness(): Promise<IssuerReadiness>;
}

/**
 * The issuer cannot work yet (its CA Secret or account key is missing, for example).
 * Not counted as a failed issuance: the engine retries when other certificates are
 * issued and on a short timer, as cert-manager keeps a request pending on an issuer
 * that is not ready.
 */
export class IssuerNotReadyError extends Error {
  readonly code = 'ISSUER_NOT_READY';
  constructor(
    message: string,
    /** The issuer's Ready=False reason (cert-manager's where it has one). */
    readonly reason = 'NotReady',
  ) {
    super(message);
    this.name = 'IssuerNotReadyError';
  }
}

/** A backend for an issuer whose spec is invalid (a custom resource): never ready, says why. */
export class InvalidIssuer implements CertificateIssuer {
  constructor(private readonly message: string) {}

  issue(): Promise<IssuedBundle> {
    return Promise.reject(new IssuerNotReadyError(this.message, 'InvalidSpec'));
  }

  readiness(): Promise<IssuerReadiness> {
    return Promise.resolve({ ready: false, reason: 'InvalidSpec', message: this.message });
  }
}
