import { createHash } from 'node:crypto';
import type { KubeClient } from '../../kubernetes/kube-client.js';
import { DecisionCache } from './decision-cache.js';

/** A ServiceAccount a token was issued to, as TokenReview reports it. */
export interface ServiceAccountRef {
  namespace: string;
  name: string;
}

export interface TokenReviewerOptions {
  client: () => KubeClient;
  audiences: readonly string[];
  /** How long an accepted token is trusted without asking again. */
  ttlMs: number;
  /** How long a refused token stays refused without asking again (keeps floods cheap). */
  negativeTtlMs?: number;
  /** While TokenReview fails, an earlier answer for the same token stands this long. */
  staleIfErrorMs: number;
  onReview?: (result: 'accepted' | 'refused' | 'error' | 'cached') => void;
}

type Answer = ServiceAccountRef | null;

const SA_USER = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

/**
 * Who a bearer token belongs to, by TokenReview with our audience. Answers are cached by
 * the token's SHA-256, never by the token, and never past the token's own expiry. The
 * token never appears in a log, an error or a metric.
 */
export class TokenReviewer {
  private readonly cache = new DecisionCache<Answer>();
  private readonly inFlight = new Map<string, Promise<Answer>>();

  constructor(private readonly opts: TokenReviewerOptions) {}

  /** The ServiceAccount, or undefined when the API server does not accept the token. */
  async review(token: string): Promise<ServiceAccountRef | undefined> {
    const key = createHash('sha256').update(token).digest('hex');
    const cached = this.cache.fresh(key);
    if (cached !== undefined) {
      this.opts.onReview?.('cached');
      return cached ?? undefined;
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.ask(token, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return (await pending) ?? undefined;
  }

  private async ask(token: string, key: string): Promise<Answer> {
    let status: { authenticated?: boolean; user?: { username?: string }; audiences?: string[] };
    try {
      const review = await this.opts.client().request<{ status?: typeof status }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...this.opts.audiences] } },
      });
      status = review.status ?? {};
    } catch (err) {
      this.opts.onReview?.('error');
      // The API server is away: a token it accepted moments ago is still the same caller.
      const recent = this.cache.recent(key, this.opts.staleIfErrorMs);
      if (recent === null || (recent && msUntilExpiry(token) > 0)) return recent;
      throw err;
    }
    const match = SA_USER.exec(status.user?.username ?? '');
    // Audience-aware authenticators echo the audiences they matched; one of ours must be there.
    const audienceOk = (status.audiences ?? []).some((a) => this.opts.audiences.includes(a));
    if (status.authenticated !== true || !audienceOk || !match) {
      this.opts.onReview?.('refused');
      this.cache.set(key, null, this.opts.negativeTtlMs ?? 5000);
      return null;
    }
    const sa = { namespace: match[1]!, name: match[3]! };
    this.opts.onReview?.('accepted');
    this.cache.set(key, sa, Math.min(this.opts.ttlMs, msUntilExpiry(token)));
    return sa;
  }
}

/**
 * The `exp` claim of a JWT, unverified: used only to shorten the cache TTL, never to
 * accept a token. Infinity when there is none to read.
 */
function msUntilExpiry(token: string): number {
  const payload = token.split('.')[1];
  if (!payload) return Infinity;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? Math.max(0, exp * 1000 - Date.now()) : Infinity;
  } catch {
    return Infinity;
  }
}
