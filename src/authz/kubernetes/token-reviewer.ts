import { createHash } from 'node:crypto';
import type { KubeClient } from '../../kubernetes/kube-client.js';
import { DecisionCache } from './decision-cache.js';

/** A ServiceAccount a token was issued to, as TokenReview reports it. */
export interface ServiceAccountRef {
  namespace: string;
  name: string;
}

/**
 * The user the API server says a token stands for, as TokenReview reports it: asked
 * about as-is in SubjectAccessReview (uid and extra included), so a review is about this
 * token's ServiceAccount object, not any later one of the same name.
 */
export interface ReviewedUser {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What an accepted token tells: its ServiceAccount, its user, and when it expires. */
export interface ReviewedToken {
  serviceAccount: ServiceAccountRef;
  user: ReviewedUser;
  /** Epoch ms of the token's `exp`; undefined for a token without one. */
  expiresAt?: number;
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

type Answer = ReviewedToken | null;

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  audiences?: string[];
}

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

  /**
   * The token's ServiceAccount and user, or undefined when the API server does not accept
   * it. `maxAgeMs` asks for an answer at most that old, past the cache TTL (a periodic
   * re-review of an open stream's credential: the streams on one token share a review).
   * Throws only when the API server cannot be asked and no recent answer stands.
   */
  async review(token: string, opts: { maxAgeMs?: number } = {}): Promise<ReviewedToken | undefined> {
    const key = createHash('sha256').update(token).digest('hex');
    if (opts.maxAgeMs !== undefined) {
      const recent = this.cache.recent(key, opts.maxAgeMs);
      if (recent !== undefined) {
        this.opts.onReview?.('cached');
        return recent ?? undefined;
      }
    } else {
      const cached = this.cache.fresh(key);
      if (cached !== undefined) {
        this.opts.onReview?.('cached');
        return cached ?? undefined;
      }
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.ask(token, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return (await pending) ?? undefined;
  }

  private async ask(token: string, key: string): Promise<Answer> {
    let status: TokenReviewStatus;
    try {
      const review = await this.opts
        .client()
        .request<{ status?: TokenReviewStatus }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
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
    const username = status.user?.username ?? '';
    const match = SA_USER.exec(username);
    // Audience-aware authenticators echo the audiences they matched; one of ours must be there.
    const audienceOk = (status.audiences ?? []).some((a) => this.opts.audiences.includes(a));
    if (status.authenticated !== true || !audienceOk || !match) {
      this.opts.onReview?.('refused');
      this.cache.set(key, null, this.opts.negativeTtlMs ?? 5000);
      return null;
    }
    const u = status.user!;
    const expiry = msUntilExpiry(token);
    const answer: ReviewedToken = {
      serviceAccount: { namespace: match[1]!, name: match[3]! },
      user: {
        username,
        ...(u.uid ? { uid: u.uid } : {}),
        groups: Array.isArray(u.groups) ? u.groups.filter((g) => typeof g === 'string') : [],
        ...(u.extra && typeof u.extra === 'object' ? { extra: u.extra } : {}),
      },
      ...(Number.isFinite(expiry) ? { expiresAt: Date.now() + expiry } : {}),
    };
    this.opts.onReview?.('accepted');
    this.cache.set(key, answer, Math.min(this.opts.ttlMs, expiry));
    return answer;
  }
}

/**
 * The `exp` claim of a JWT, unverified by us but only read after (or to shorten the trust
 * in) the API server's acceptance. Infinity when there is none to read.
 */
export function msUntilExpiry(token: string): number {
  const payload = token.split('.')[1];
  if (!payload) return Infinity;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? Math.max(0, exp * 1000 - Date.now()) : Infinity;
  } catch {
    return Infinity;
  }
}
