// One Certificate's loop: gather (Secret, status), ask the policies whether to issue,
// respect the backoff, issue, persist, record the status, and schedule the next look
// (renewal time, backoff end, or a retry while the issuer is not ready). One run at a
// time; a trigger during a run asks for one more run after it.
//
// Persistence order of one issuance: status Issuing=True -> next key (0600) -> the
// issuer's requests (an ACME order URL is persisted by the ACME issuer) -> tls.key,
// tls.crt, ca.crt (naming the order) -> next key and order removed -> status. The Secret
// being served is only replaced by a complete, validated new one, so a failure anywhere
// leaves the old certificate in service; a crash between the Secret and the removals
// leaves state the next attempt recognises as finished and discards.

import { encodePrivateKeyPem, validateTlsCertificate } from '../pki/index.js';
import type { Logger } from '../observability/logger.js';
import { nextAttemptAllowedAt } from './backoff.js';
import {
  emptyStatus,
  getCondition,
  withCondition,
  withoutCondition,
  type CertificateStatus,
  type OrderStatus,
} from './certificate-status.js';
import type { IssuanceSettings } from './issuance-config.js';
import type { StepHook } from './issuance-hooks.js';
import { CertificateIsOutsideIssuerRestrictions } from './issuer-restrictions.js';
import type { IssuanceSlots } from './issuance-slots.js';
import { IssuerNotReadyError, type CertificateIssuer } from './issuers/issuer.js';
import { discardFinishedIssuanceLeftovers } from './finished-issuance-leftovers.js';
import { externalRenewalRequest } from './manual-trigger.js';
import { nextPrivateKey, type NextKey } from './next-private-key.js';
import { SecretSupersededError, type CertificatePersister, type PersistedSecret } from './persisters/persister.js';
import { certificateRenewalTime, evaluate, READINESS_POLICIES, TRIGGER_POLICIES, type PolicyInput, type PolicyResult } from './policies.js';
import type { CertificateResource, IssuerResource } from './resources.js';
import { renewalTime } from './renewal-time.js';
import { ANNOTATIONS, requestHash, secretFacts } from './secret-facts.js';

/** setTimeout's limit is about 24.8 days; a later renewal is re-checked daily instead. */
const MAX_TIMER_MS = 24 * 3_600_000;
/** While an issuer is not ready, look again at least this often. */
const ISSUER_RETRY_MAX_MS = 30_000;

export interface ControllerDeps {
  persister: CertificatePersister;
  settings: IssuanceSettings;
  now: () => Date;
  logger: Logger;
  hook: StepHook | undefined;
  signal: AbortSignal;
  /** Told after every status write (the engine keeps the latest for readiness and status()). */
  onStatus: (cert: CertificateResource, status: CertificateStatus) => void;
  /** Told after a certificate is persisted: issuers that were not ready may be now. */
  onIssued: (cert: CertificateResource) => void;
  /** Told when the issuer said it cannot work yet (its Ready condition becomes False). */
  onIssuerNotReady?: (cert: CertificateResource, err: IssuerNotReadyError) => void;
  /** Bounds the issuances running at once, across certificates. */
  slots: IssuanceSlots;
  /** Why this (CA) Certificate must not replace its Secret now: a CA rotation holds it. */
  heldByRotation?: (cert: CertificateResource) => string | undefined;
  /**
   * A certificate was issued with a new key over an existing one: a CA rotation may take
   * the key pair instead of the Secret (it says why), so gateways trust it before it signs.
   */
  handOverCaKey?: (
    cert: CertificateResource,
    issued: { chainPem: string; keyPem: string; caPem: string | undefined },
  ) => Promise<string | undefined>;
}

export type Outcome =
  'up-to-date' | 'issued' | 'failed' | 'waiting-for-issuer' | 'backing-off' | 'denied' | 'stopped' | 'superseded' | 'held-by-rotation';

export class CertificateController {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private status: CertificateStatus | undefined;
  /**
   * The forced-renewal trigger, kept apart from the status a run is working on: a
   * request that arrives mid-run must survive that run's status writes.
   */
  private renewalRequestedAt: string | undefined;
  lastOutcome: Outcome | undefined;

  constructor(
    readonly certificate: CertificateResource,
    private readonly issuerResource: IssuerResource,
    private readonly issuer: CertificateIssuer,
    private readonly deps: ControllerDeps,
  ) {}

  /** Runs now, or once more after the current run. */
  trigger(): void {
    if (this.deps.signal.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.trigger();
      }
    });
  }

  /** Resolves when the current run (if any) ends. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** Records a forced renewal (persisted first, so a restart still honours it) and runs. */
  async requestRenewal(): Promise<string> {
    const status = await this.currentStatus();
    const at = this.deps.now().toISOString();
    this.renewalRequestedAt = at;
    await this.save(status);
    this.trigger();
    return at;
  }

  private async run(): Promise<void> {
    try {
      this.lastOutcome = await this.reconcile();
    } catch (err) {
      // Persister failures (disk full, permissions): logged, retried on the backoff base.
      this.lastOutcome = 'failed';
      this.deps.logger.error({ err: (err as Error).message }, 'issuance engine error; retrying');
      this.schedule(new Date(this.deps.now().getTime() + this.deps.settings.backoffInitialMs));
    }
  }

  private async currentStatus(): Promise<CertificateStatus> {
    if (!this.status) {
      this.status = (await this.deps.persister.readStatus(this.certificate)) ?? emptyStatus();
      // `renew --kubernetes` / cmctl renew set Issuing=True (ManuallyTriggered) meanwhile.
      this.renewalRequestedAt ??= this.status.renewalRequestedAt ?? externalRenewalRequest(this.status);
    }
    return this.status;
  }

  /** Drops the forced-renewal trigger if it was given before `attemptStart` (that attempt answered it). */
  private consumeRenewalRequest(attemptStart: Date): void {
    if (this.renewalRequestedAt !== undefined && Date.parse(this.renewalRequestedAt) <= attemptStart.getTime())
      this.renewalRequestedAt = undefined;
  }

  private async save(next: CertificateStatus): Promise<void> {
    const status = { ...next };
    if (this.renewalRequestedAt !== undefined) status.renewalRequestedAt = this.renewalRequestedAt;
    else delete status.renewalRequestedAt;
    this.status = status;
    await this.deps.persister.writeStatus(this.certificate, status);
    this.deps.onStatus(this.certificate, status);
  }

  private schedule(at: Date): void {
    clearTimeout(this.timer);
    if (this.deps.signal.aborted) return;
    const delay = Math.min(Math.max(0, at.getTime() - this.deps.now().getTime()), MAX_TIMER_MS);
    this.timer = setTimeout(() => this.trigger(), delay);
    this.timer.unref();
  }

  private async reconcile(): Promise<Outcome> {
    const cert = this.certificate;
    const { persister, settings } = this.deps;
    let status = await this.currentStatus();
    const now = this.deps.now();

    const denied = CertificateIsOutsideIssuerRestrictions(cert, this.issuerResource);
    if (denied) {
      // No key, no order: the refusal costs the CA nothing. Config changes need a restart.
      if (getCondition(status, 'Ready')?.reason !== denied.reason || this.lastOutcome === undefined) {
        this.deps.logger.warn({ reason: denied.reason }, denied.message);
      }
      status = withoutCondition(withCondition(status, 'Ready', 'False', denied.reason, denied.message, now), 'Issuing');
      await this.save(status);
      return 'denied';
    }

    const held = this.deps.heldByRotation?.(cert);
    if (held) {
      // The CA rotation writes this Secret itself once gateways trust the new CA; it wakes us then.
      if (getCondition(status, 'Issuing')?.reason !== 'CARotation') {
        status = withCondition(status, 'Issuing', 'True', 'CARotation', held, now);
        await this.save(status);
      }
      return 'held-by-rotation';
    }

    const secret = await persister.readSecret(cert.namespace, cert.spec.secretName);
    const input: PolicyInput = { certificate: cert, secret: secret && secretFacts(secret), status, now, jitter: settings.renewalJitter };
    status = observed(status, input);
    const trigger = evaluate(TRIGGER_POLICIES, input);
    const notReady = evaluate(READINESS_POLICIES, input);

    if (!trigger) {
      status = withoutCondition(readyCondition(status, undefined, now), 'Issuing');
      await this.save(status);
      const due = certificateRenewalTime(input);
      if (due) this.schedule(due);
      return 'up-to-date';
    }

    const forced = this.renewalRequestedAt !== undefined;
    const allowedAt = nextAttemptAllowedAt(status, settings);
    if (!forced && allowedAt && now.getTime() < allowedAt.getTime()) {
      // Keep the Ready message of the failure (it says what went wrong) while waiting.
      const previous = getCondition(status, 'Ready');
      const same = previous && notReady && previous.status === 'False' && previous.reason === notReady.reason;
      if (!same) status = readyCondition(status, notReady, now);
      await this.save(status);
      this.schedule(allowedAt);
      return 'backing-off';
    }
    let release: () => void;
    try {
      release = await this.deps.slots.acquire(this.deps.signal);
    } catch {
      return 'stopped';
    }
    try {
      return await this.issue(status, trigger, notReady, secret, this.deps.now());
    } finally {
      release();
    }
  }

  private async issue(
    before: CertificateStatus,
    trigger: PolicyResult,
    notReady: PolicyResult | undefined,
    current: PersistedSecret | undefined,
    startedAt: Date,
  ): Promise<Outcome> {
    const cert = this.certificate;
    // The previous attempt's order is replaced by this attempt's (if it places one).
    const { order: _previousOrder, ...fresh } = before;
    void _previousOrder;
    const issuing = readyCondition(
      withCondition(fresh, 'Issuing', 'True', trigger.reason, trigger.message, startedAt),
      notReady,
      startedAt,
    );
    await this.save(issuing);
    this.deps.logger.info({ secret: cert.spec.secretName, reason: trigger.reason }, trigger.message);
    try {
      const persisted = await this.persistNewCertificate(before, issuing, current);
      if ('handedOver' in persisted) return await this.recordHandedOver(issuing, persisted.handedOver, startedAt);
      return await this.recordIssued(issuing, persisted, startedAt);
    } catch (err) {
      return await this.recordFailure(err, issuing, trigger, notReady, startedAt);
    }
  }

  /**
   * The key (persisted before anything is sent), the certificate from the issuer, the
   * store's door check, then the Secret: the one being served is replaced only by a valid one.
   */
  private async persistNewCertificate(
    before: CertificateStatus,
    issuing: CertificateStatus,
    current: PersistedSecret | undefined,
  ): Promise<PersistedIssuance | { handedOver: string }> {
    const cert = this.certificate;
    const { persister, logger, signal } = this.deps;
    const step = (s: 'key-persisted' | 'persisted') => this.deps.hook?.(s, { certificate: cert.id }, signal);
    // A crash right after the last issuance's Secret was written left its key and order.
    await discardFinishedIssuanceLeftovers(cert, current, persister, logger);
    const next = await nextPrivateKey(cert, current, persister);
    await step('key-persisted');
    signal.throwIfAborted();
    // An ACME order's progress goes into the status as it happens.
    const progress = async (order: OrderStatus) => {
      if (signal.aborted) return;
      await this.save({ ...(this.status ?? issuing), order });
    };
    // The validity starts now, after the key generation (seconds for RSA 4096), not
    // when the attempt began.
    const bundle = await this.issuer.issue({ certificate: cert, privateKey: next.key, now: this.deps.now(), signal, progress });
    signal.throwIfAborted();
    const keyPem =
      next.source === 'current' && current?.data['tls.key']
        ? current.data['tls.key']
        : encodePrivateKeyPem(next.key, cert.spec.privateKey.encoding);
    // The store's own door check, before anything is replaced: a certificate it would
    // refuse must not take the place of the one being served.
    const summary = validateTlsCertificate({ chainPem: bundle.chainPem, keyPem, now: this.deps.now() }).leaf;
    if (next.source !== 'current' && current?.data['tls.crt'] && this.deps.handOverCaKey) {
      const handedOver = await this.deps.handOverCaKey(cert, { chainPem: bundle.chainPem, keyPem, caPem: bundle.caPem });
      // The rotation holds the key pair now (persisted): this attempt is answered.
      if (handedOver) {
        await persister.deleteNextPrivateKey(cert);
        return { handedOver };
      }
    }
    const data: Record<string, string> = { 'tls.crt': bundle.chainPem, 'tls.key': keyPem };
    if (bundle.caPem) data['ca.crt'] = bundle.caPem;
    // Past both the status and the Secret: a lost status must not make a revision go back.
    const revision = Math.max(before.revision ?? 0, Number(current?.annotations[ANNOTATIONS.revision] ?? 0) || 0) + 1;
    // The order this certificate came from, named in the Secret: if we die before it is
    // deleted below, the next attempt knows it is finished (finished-issuance-leftovers.ts).
    const order = await persister.readOrder(cert);
    await persister.writeSecret(cert.namespace, cert.spec.secretName, {
      data,
      annotations: {
        [ANNOTATIONS.issuerName]: cert.spec.issuerRef.name,
        [ANNOTATIONS.issuerKind]: cert.spec.issuerRef.kind,
        [ANNOTATIONS.certificateName]: cert.name,
        [ANNOTATIONS.requestHash]: requestHash(cert.spec),
        [ANNOTATIONS.revision]: String(revision),
        ...(order ? { [ANNOTATIONS.orderUrl]: order.orderUrl } : {}),
      },
    });
    await step('persisted');
    await persister.deleteNextPrivateKey(cert);
    await persister.deleteOrder(cert);
    return { revision, notBefore: summary.notBefore, notAfter: summary.notAfter, keySource: next.source };
  }

  /** Ready again, the failure count cleared, the renewal scheduled. */
  private async recordIssued(issuing: CertificateStatus, issued: PersistedIssuance, startedAt: Date): Promise<Outcome> {
    const cert = this.certificate;
    const done = this.deps.now();
    let status: CertificateStatus = { ...(this.status ?? issuing), revision: issued.revision };
    delete status.failedIssuanceAttempts;
    delete status.lastFailureTime;
    // A renewal asked for while this one ran asks for another.
    this.consumeRenewalRequest(startedAt);
    const renewal = renewalTime({
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      renewBefore: cert.spec.renewBefore,
      jitter: this.deps.settings.renewalJitter,
      seed: cert.id,
    });
    status.notBefore = issued.notBefore.toISOString();
    status.notAfter = issued.notAfter.toISOString();
    status.renewalTime = renewal.toISOString();
    status = withoutCondition(readyCondition(status, undefined, done), 'Issuing');
    await this.save(status);
    this.deps.logger.info(
      {
        secret: cert.spec.secretName,
        revision: status.revision,
        notAfter: status.notAfter,
        renewalTime: status.renewalTime,
        keySource: issued.keySource,
      },
      'certificate issued',
    );
    this.deps.onIssued(cert);
    if (this.renewalRequestedAt !== undefined) this.again = true;
    else this.schedule(renewal);
    return 'issued';
  }

  /** A CA rotation took the new key pair: Issuing says so until the rotation writes the Secret and wakes us. */
  private async recordHandedOver(issuing: CertificateStatus, why: string, startedAt: Date): Promise<Outcome> {
    this.consumeRenewalRequest(startedAt);
    await this.save(withCondition(this.status ?? issuing, 'Issuing', 'True', 'CARotation', why, this.deps.now()));
    this.deps.logger.info({ secret: this.certificate.spec.secretName }, why);
    return 'held-by-rotation';
  }

  /** Stopped, superseded by another writer, waiting for the issuer, or failed (backoff). */
  private async recordFailure(
    err: unknown,
    issuing: CertificateStatus,
    trigger: PolicyResult,
    notReady: PolicyResult | undefined,
    startedAt: Date,
  ): Promise<Outcome> {
    const cert = this.certificate;
    const { logger, signal } = this.deps;
    if (signal.aborted) return 'stopped'; // shutting down: not a failure, state stays for the next start
    if (err instanceof SecretSupersededError) {
      // Another writer issued meanwhile: not a failure of ours. Look again at what it wrote.
      logger.info({ secret: cert.spec.secretName, revision: err.held }, err.message);
      this.again = true;
      return 'superseded';
    }
    const message = (err as Error).message;
    const now = this.deps.now();
    const latest = this.status ?? issuing;
    if (err instanceof IssuerNotReadyError) {
      const status = readyCondition(
        withCondition(latest, 'Issuing', 'True', trigger.reason, `Waiting for the issuer: ${message}`, now),
        notReady,
        now,
        `waiting for the issuer: ${message}`,
      );
      await this.save(status);
      logger.warn({ reason: 'IssuerNotReady' }, message);
      this.deps.onIssuerNotReady?.(cert, err);
      this.schedule(new Date(now.getTime() + Math.min(this.deps.settings.backoffInitialMs, ISSUER_RETRY_MAX_MS)));
      return 'waiting-for-issuer';
    }
    let status: CertificateStatus = {
      ...latest,
      failedIssuanceAttempts: (latest.failedIssuanceAttempts ?? 0) + 1,
      lastFailureTime: now.toISOString(),
    };
    this.consumeRenewalRequest(startedAt);
    const retryAt = nextAttemptAllowedAt(status, this.deps.settings)!;
    const failure = `The certificate request has failed to complete and will be retried after ${retryAt.toISOString()}: ${message}`;
    status = readyCondition(
      withCondition(status, 'Issuing', 'False', 'Failed', failure, now),
      notReady,
      now,
      `issuance failed: ${message}`,
    );
    await this.save(status);
    logger.warn(
      { secret: cert.spec.secretName, failedIssuanceAttempts: status.failedIssuanceAttempts, retryAt: retryAt.toISOString(), err: message },
      'certificate issuance failed; the current certificate (if any) stays in service',
    );
    this.schedule(this.renewalRequestedAt !== undefined ? now : retryAt);
    return 'failed';
  }
}

/** What a successful attempt wrote: the Secret's revision, its validity and where the key came from. */
interface PersistedIssuance {
  revision: number;
  notBefore: Date;
  notAfter: Date;
  keySource: NextKey['source'];
}

/** Ready from the readiness policies; `extra` says what the last attempt ran into. */
function readyCondition(status: CertificateStatus, notReady: PolicyResult | undefined, now: Date, extra?: string): CertificateStatus {
  if (!notReady) return withCondition(status, 'Ready', 'True', 'Ready', 'Certificate is up to date and has not expired', now);
  return withCondition(status, 'Ready', 'False', notReady.reason, extra ? `${notReady.message}; ${extra}` : notReady.message, now);
}

/** notBefore, notAfter and renewalTime as the Secret shows them now. */
function observed(status: CertificateStatus, input: PolicyInput): CertificateStatus {
  const leaf = input.secret?.leaf;
  const next = { ...status };
  if (!leaf) {
    delete next.notBefore;
    delete next.notAfter;
    delete next.renewalTime;
    return next;
  }
  next.notBefore = leaf.notBefore.toISOString();
  next.notAfter = leaf.notAfter.toISOString();
  const due = certificateRenewalTime(input);
  if (due) next.renewalTime = due.toISOString();
  return next;
}
