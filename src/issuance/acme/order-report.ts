// What one ACME order looks like while the issuer drives it: the order's URL and state,
// and per authorization the challenge chosen, whether it is presented, its state and
// why it failed. Every change is handed to `publish` (the controller writes it into the
// Certificate's status), so a failing issuance shows which challenge failed and why.

import type * as acme from 'acme-client';
import type { ChallengeStatus, OrderStatus } from '../certificate-status.js';

export type OrderProgress = (order: OrderStatus) => Promise<void>;

export class OrderReport {
  private order: OrderStatus | undefined;
  private closed = false;

  constructor(private readonly publish: OrderProgress | undefined) {}

  get url(): string | undefined {
    return this.order?.url;
  }

  /** A new or resumed order: its challenges are not known yet. */
  async placed(url: string, state: string): Promise<void> {
    this.order = { url, state, challenges: [] };
    await this.emit();
  }

  async orderState(state: string, problem?: object): Promise<void> {
    if (!this.order) return;
    this.order.state = state;
    if (problem) this.order.reason = describeProblem(problem);
    await this.emit();
  }

  /** The order could not go on for a reason of ours (no solver, DNS update refused...). */
  async failed(reason: string): Promise<void> {
    if (!this.order) return;
    this.order.reason ??= reason;
    await this.emit();
  }

  /** A challenge about to be presented (or an authorization already valid, with its own state). */
  async challenge(domain: string, challenge: Pick<ChallengeStatus, 'type' | 'url' | 'state'> & { reason?: string }): Promise<void> {
    if (!this.order) return;
    const entry: ChallengeStatus = {
      type: challenge.type,
      domain,
      url: challenge.url,
      state: challenge.state,
      presented: false,
      ...(challenge.reason ? { reason: challenge.reason } : {}),
    };
    const others = this.order.challenges.filter((c) => c.domain !== domain);
    this.order.challenges = [...others, entry].sort((a, b) => a.domain.localeCompare(b.domain));
    await this.emit();
  }

  async presented(domain: string): Promise<void> {
    const c = this.order?.challenges.find((x) => x.domain === domain);
    if (!c) return;
    c.presented = true;
    await this.emit();
  }

  async challengeState(domain: string, state: string, reason?: string): Promise<void> {
    const c = this.order?.challenges.find((x) => x.domain === domain);
    if (!c) return;
    c.state = state;
    if (reason !== undefined) c.reason = reason;
    else delete c.reason;
    await this.emit();
  }

  /** Published records are withdrawn once the authorization is done, whatever its outcome. */
  async withdrawn(): Promise<void> {
    if (!this.order) return;
    for (const c of this.order.challenges) c.presented = false;
    await this.emit();
  }

  /** The attempt is over: later changes are not published. */
  close(): void {
    this.closed = true;
  }

  private async emit(): Promise<void> {
    if (this.order && this.publish && !this.closed) await this.publish(structuredClone(this.order));
  }
}

/** An ACME problem document as `type: detail` (RFC 8555 6.7), without the URN prefix. */
export function describeProblem(problem: object): string {
  const p = problem as { type?: string; detail?: string };
  const type = p.type?.replace(/^urn:ietf:params:acme:error:/, '');
  return [type, p.detail].filter(Boolean).join(': ') || JSON.stringify(problem);
}

/** The failed challenge of an authorization and its problem, if the CA says. */
export function failedChallenge(authz: acme.Authorization): { type: string; reason: string } | undefined {
  const failed = authz.challenges.find((c) => c.status === 'invalid' && c.error);
  return failed?.error ? { type: failed.type, reason: describeProblem(failed.error) } : undefined;
}
