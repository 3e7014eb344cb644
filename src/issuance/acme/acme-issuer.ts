// acme: one order per issuance, driven step by step so that each step survives a crash.
//
//   1. the next key is already persisted (the engine did it)
//   2. a persisted in-progress order for the same account, names and key is continued;
//      otherwise a new order is placed and its URL persisted before anything else
//   3. each pending authorization gets its solver (selector rules), the challenge is
//      published, the CA is told, and the authorization polled; published records are
//      always withdrawn
//   4. the CSR (from the persisted key) finalizes the order; the chain is downloaded
//
// A restart anywhere in 2-4 finds the order again and continues it: no second order,
// no second key.

import { createHash, type KeyObject } from 'node:crypto';
import type * as acme from 'acme-client';
import { createCsr, certificatesFromPem, certificatePublicKey, publicKeyDer, sameKeyPair } from '../../pki/index.js';
import type { Logger } from '../../observability/logger.js';
import type { IssuanceStep, StepHook } from '../issuance-hooks.js';
import type { CertificatePersister, OrderState } from '../persisters/persister.js';
import type { AcmeIssuerSpec, AcmeSolver, CertificateResource, IssuerResource } from '../resources.js';
import type { IssuerReadiness } from '../issuer-status.js';
import { IssuerNotReadyError, type CertificateIssuer, type IssueRequest, type IssuedBundle } from '../issuers/issuer.js';
import { ensureAccount, forgetAccountUrl, type AcmeAccount } from './acme-account.js';
import { configureAcmeTransport, explainAcmeError } from './acme-transport.js';
import { Rfc2136Presenter, type Dns01Record } from './dns01-solver.js';
import type { Http01Responder } from './http01-solver.js';
import { describeProblem, failedChallenge, OrderReport } from './order-report.js';
import { pollUntil, type PollSettings } from './poll.js';
import { selectSolver } from './solver-selection.js';

export interface AcmeIssuerDeps {
  persister: CertificatePersister;
  http01: Http01Responder;
  poll: PollSettings;
  logger: Logger;
  hook: StepHook | undefined;
}

type Cleanup = () => Promise<void>;

export class AcmeIssuer implements CertificateIssuer {
  private readonly spec: AcmeIssuerSpec;
  private account: Promise<AcmeAccount> | undefined;
  private readonly presenters = new Map<AcmeSolver, Rfc2136Presenter>();

  constructor(
    private readonly resource: IssuerResource & { spec: { type: 'acme' } },
    private readonly deps: AcmeIssuerDeps,
  ) {
    this.spec = resource.spec.acme;
  }

  /** Ready once the account is registered (or found): cert-manager's ACME issuer condition. */
  async readiness(): Promise<IssuerReadiness> {
    configureAcmeTransport(this.spec.server, this.spec);
    try {
      this.account ??= ensureAccount(this.resource, this.spec, this.deps.persister, this.deps.logger);
      const { accountUrl } = await this.account;
      return {
        ready: true,
        reason: 'ACMEAccountRegistered',
        message: 'The ACME account was registered with the ACME server',
        acme: { uri: accountUrl, ...(this.spec.email ? { lastRegisteredEmail: this.spec.email } : {}) },
      };
    } catch (err) {
      this.account = undefined;
      const reason = err instanceof IssuerNotReadyError ? err.message : (await explainAcmeError(err, this.spec.server)).message;
      return { ready: false, reason: 'ErrRegisterACMEAccount', message: `Failed to register ACME account: ${reason}` };
    }
  }

  async issue(request: IssueRequest): Promise<IssuedBundle> {
    const { certificate, privateKey, signal } = request;
    const report = new OrderReport(request.progress);
    configureAcmeTransport(this.spec.server, this.spec);
    let account: AcmeAccount;
    try {
      this.account ??= ensureAccount(this.resource, this.spec, this.deps.persister, this.deps.logger);
      account = await this.account;
    } catch (err) {
      this.account = undefined; // try again on the next attempt
      throw await explainAcmeError(err, this.spec.server);
    }
    try {
      return await this.order(account, certificate, privateKey, signal, report);
    } catch (e) {
      const err = signal.aborted ? e : await explainAcmeError(e, this.spec.server);
      if (!signal.aborted) await this.settle(account.client, report, (err as Error).message);
      if (/accountDoesNotExist|account.*(does not exist|not found)/i.test((err as Error).message)) {
        // The CA lost the account (a test CA restarted, staging reset): look it up or register again next time.
        this.account = undefined;
        await forgetAccountUrl(this.resource, this.spec, this.deps.persister);
      }
      throw err;
    } finally {
      report.close(); // nothing of this attempt reaches the status after it ends
    }
  }

  /** After a failure: the order's state as the CA now sees it, and our reason when the CA gives none. */
  private async settle(client: acme.Client, report: OrderReport, reason: string): Promise<void> {
    const url = report.url;
    if (url) {
      try {
        const current = await client.getOrder({ url } as acme.Order);
        await report.orderState(current.status, current.error);
      } catch {
        // the CA is unreachable: the last known state stays
      }
    }
    await report.failed(reason);
  }

  private async order(
    account: AcmeAccount,
    certificate: CertificateResource,
    privateKey: KeyObject,
    signal: AbortSignal,
    report: OrderReport,
  ): Promise<IssuedBundle> {
    const { client, accountUrl } = account;
    const identifiers = identifiersOf(certificate);
    const publicKeySha256 = createHash('sha256').update(publicKeyDer(privateKey)).digest('hex');
    const step = (s: IssuanceStep, orderUrl?: string) =>
      this.deps.hook?.(s, { certificate: certificate.id, ...(orderUrl ? { orderUrl } : {}) }, signal);

    let order: acme.Order | undefined;
    const saved = await this.deps.persister.readOrder(certificate);
    if (saved && resumable(saved, this.spec.server, accountUrl, identifiers, publicKeySha256)) {
      try {
        order = await client.getOrder({ url: saved.orderUrl } as acme.Order);
        if (order.status === 'invalid') {
          this.deps.logger.info(
            { certificate: certificate.id, orderUrl: saved.orderUrl },
            'persisted ACME order is invalid; placing a new one',
          );
          order = undefined;
        } else {
          this.deps.logger.info(
            { certificate: certificate.id, orderUrl: saved.orderUrl, status: order.status },
            'continuing persisted ACME order',
          );
          await report.placed(saved.orderUrl, order.status);
          await step('order-resumed', saved.orderUrl);
        }
      } catch (err) {
        signal.throwIfAborted();
        this.deps.logger.info(
          { certificate: certificate.id, orderUrl: saved.orderUrl, err: (err as Error).message },
          'persisted ACME order cannot be fetched; placing a new one',
        );
        order = undefined;
      }
    }
    if (!order) {
      signal.throwIfAborted();
      order = await client.createOrder({ identifiers: identifiers.map((value) => ({ type: 'dns', value })) });
      const state: OrderState = {
        server: this.spec.server,
        accountUrl,
        orderUrl: order.url,
        identifiers,
        publicKeySha256,
        createdAt: new Date().toISOString(),
      };
      await this.deps.persister.writeOrder(certificate, state);
      this.deps.logger.info({ certificate: certificate.id, orderUrl: order.url }, 'ACME order placed');
      await report.placed(order.url, order.status);
      await step('order-created', order.url);
    }
    const orderUrl = order.url;

    if (order.status === 'pending') {
      await this.authorize(client, order, certificate, signal, report, () => step('challenges-presented', orderUrl));
      order = await client.getOrder(order);
      await report.orderState(order.status, order.error);
    }
    if (order.status === 'pending') order = await this.waitForOrder(client, order, ['ready', 'processing', 'valid'], signal);
    if (order.status === 'ready') {
      await step('before-finalize', orderUrl);
      signal.throwIfAborted();
      const csr = await createCsr({
        privateKey,
        subject: certificate.spec.commonName !== undefined ? { commonName: certificate.spec.commonName } : {},
        dnsNames: identifiers,
      });
      order = await client.finalizeOrder(order, csr.pem);
      await report.orderState(order.status, order.error);
    }
    if (order.status !== 'valid') order = await this.waitForOrder(client, order, ['valid'], signal);
    await report.orderState(order.status);
    const chainPem = await client.getCertificate(order, this.spec.preferredChain);
    await step('order-finalized', orderUrl);

    const leaf = certificatesFromPem(chainPem)[0];
    if (!leaf || !sameKeyPair(privateKey, certificatePublicKey(leaf))) {
      throw new Error(`ACME order ${orderUrl} returned a certificate for another key`);
    }
    // ACME does not name the root to trust; cert-manager leaves ca.crt empty too.
    return { chainPem: chainPem.endsWith('\n') ? chainPem : `${chainPem}\n`, caPem: undefined };
  }

  private async authorize(
    client: acme.Client,
    order: acme.Order,
    certificate: CertificateResource,
    signal: AbortSignal,
    report: OrderReport,
    presented: () => unknown,
  ): Promise<void> {
    const all = await client.getAuthorizations(order);
    // Authorizations the CA already holds as valid (reused) are listed as they are.
    for (const authz of all.filter((a) => a.status === 'valid')) {
      const c = authz.challenges.find((x) => x.status === 'valid');
      if (c) await report.challenge(domainOf(authz), { type: c.type, url: c.url, state: c.status });
    }
    const authorizations = all.filter((a) => a.status !== 'valid');
    const cleanups: Cleanup[] = [];
    try {
      const pending: Array<{ authz: acme.Authorization; challenge: acme.Authorization['challenges'][number] }> = [];
      for (const authz of authorizations) {
        const name = domainOf(authz);
        // A challenge that cannot be attempted is shown with why, then fails the attempt.
        const refuse = async (type: string, reason: string): Promise<never> => {
          await report.challenge(name, { type, url: '', state: authz.status, reason });
          throw new Error(reason);
        };
        if (authz.status !== 'pending') {
          const failed = failedChallenge(authz);
          await refuse(
            failed?.type ?? 'unknown',
            failed ? `${failed.type} for ${name} failed: ${failed.reason}` : `authorization for ${name} is ${authz.status}`,
          );
        }
        const solver = selectSolver(this.spec.solvers, name, certificate.labels);
        if (!solver) return await refuse('unknown', `no solver of ${this.who()} is selected for ${name}`);
        const type = solver.type === 'http01' ? 'http-01' : 'dns-01';
        if (solver.type === 'http01' && authz.wildcard)
          await refuse(type, `${name}: a wildcard needs a dns01 solver, but the http01 solver was selected`);
        const challenge = authz.challenges.find((c) => c.type === type);
        if (!challenge) return await refuse(type, `the CA offers no ${type} challenge for ${name}`);
        await report.challenge(name, { type, url: challenge.url, state: challenge.status });
        const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
        signal.throwIfAborted();
        if (solver.type === 'http01') {
          this.deps.http01.present(challenge.token, keyAuthorization);
          cleanups.push(async () => this.deps.http01.cleanup(challenge.token));
        } else {
          const presenter = this.presenterFor(solver);
          const record: Dns01Record = await presenter.recordFor(authz.identifier.value, keyAuthorization);
          cleanups.push(() => presenter.cleanup(record));
          try {
            await presenter.present(record);
          } catch (err) {
            await report.challengeState(name, challenge.status, `DNS-01 record not presented: ${(err as Error).message}`);
            throw err;
          }
        }
        await report.presented(name);
        pending.push({ authz, challenge });
      }
      await presented();
      for (const { authz, challenge } of pending) {
        // A resumed order may have a challenge the CA is already processing.
        if (challenge.status === 'pending') {
          await client.completeChallenge(challenge);
          await report.challengeState(domainOf(authz), 'processing');
        }
      }
      // One failed authorization ends the attempt: the others stop polling (and reporting) too.
      const polls = new AbortController();
      const stop = () => polls.abort(signal.reason);
      signal.addEventListener('abort', stop, { once: true });
      try {
        await Promise.all(pending.map(({ authz }) => this.waitForAuthorization(client, authz, polls.signal, report)));
      } finally {
        signal.removeEventListener('abort', stop);
        polls.abort(new Error('attempt ended'));
      }
    } finally {
      for (const cleanup of cleanups) {
        await cleanup().catch((err: unknown) =>
          this.deps.logger.warn({ certificate: certificate.id, err: (err as Error).message }, 'ACME challenge cleanup failed'),
        );
      }
      if (cleanups.length > 0) await report.withdrawn();
    }
  }

  private waitForAuthorization(
    client: acme.Client,
    authz: acme.Authorization,
    signal: AbortSignal,
    report: OrderReport,
  ): Promise<acme.Authorization> {
    const name = domainOf(authz);
    return pollUntil(
      `authorization for ${name}`,
      async () => {
        const [current] = await client.getAuthorizations({ authorizations: [authz.url] } as acme.Order);
        if (!current || current.status === 'pending') return undefined;
        if (current.status === 'valid') {
          await report.challengeState(name, 'valid');
          return current;
        }
        const failed = failedChallenge(current);
        const detail = failed ? failed.reason : `authorization is ${current.status}`;
        await report.challengeState(name, 'invalid', detail);
        throw new Error(`${failed?.type ?? 'challenge'} for ${name} failed: ${detail}`);
      },
      this.deps.poll,
      signal,
    );
  }

  private waitForOrder(client: acme.Client, order: acme.Order, until: acme.Order['status'][], signal: AbortSignal): Promise<acme.Order> {
    return pollUntil(
      `order ${order.url}`,
      async () => {
        const current = await client.getOrder(order);
        if (until.includes(current.status)) return current;
        if (current.status === 'invalid')
          throw new Error(`order ${order.url} is invalid${current.error ? `: ${describeProblem(current.error)}` : ''}`);
        return undefined;
      },
      this.deps.poll,
      signal,
    );
  }

  private presenterFor(solver: AcmeSolver & { type: 'dns01' }): Rfc2136Presenter {
    let p = this.presenters.get(solver);
    if (!p) {
      p = new Rfc2136Presenter(solver.rfc2136, this.resource, this.deps.persister, solver.cnameStrategy);
      this.presenters.set(solver, p);
    }
    return p;
  }

  private who(): string {
    return `${this.resource.kind} "${this.resource.name}"`;
  }
}

/** The names to order: commonName and dnsNames, lowercased, once each, sorted. */
export function identifiersOf(certificate: CertificateResource): string[] {
  const names = [...(certificate.spec.commonName !== undefined ? [certificate.spec.commonName] : []), ...certificate.spec.dnsNames];
  return [...new Set(names.map((n) => n.toLowerCase()))].sort();
}

/** A persisted order is continued only for the same server, account, names and key. */
export function resumable(saved: OrderState, server: string, accountUrl: string, identifiers: string[], publicKeySha256: string): boolean {
  return (
    saved.server === server &&
    saved.accountUrl === accountUrl &&
    saved.publicKeySha256 === publicKeySha256 &&
    saved.identifiers.length === identifiers.length &&
    saved.identifiers.every((x, i) => x === identifiers[i])
  );
}

/** The authorization's name as asked for: `*.example.com` for a wildcard. */
function domainOf(authz: acme.Authorization): string {
  return `${authz.wildcard ? '*.' : ''}${authz.identifier.value}`;
}
