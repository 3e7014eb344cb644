import type { Logger } from '../../observability/logger.js';
import type { IdentityCredential } from './reviewed-identities.js';
import type { ReviewedToken } from './token-reviewer.js';

/** The longest setTimeout delay Node honours (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * When a stream on a token with `remainingMs` left must end: a random point between 80%
 * and 95% of it, so that streams opened together do not all reconnect together, and
 * Envoy (which re-reads its projected token file on every new stream) moves to its
 * rotated token well before the old one expires.
 */
export function streamDeadlineMs(remainingMs: number, random: () => number = Math.random): number {
  return Math.max(0, remainingMs) * (0.8 + 0.15 * random());
}

export interface CredentialWatchOptions {
  credential: IdentityCredential;
  /** Re-asks TokenReview (an answer up to half an interval old may be shared); undefined = refused; throws = cannot ask. */
  review: (token: string) => Promise<ReviewedToken | undefined>;
  reviewIntervalMs: number;
  logger: Logger;
  onInvalid: (reason: string) => void;
  now?: () => number;
  random?: () => number;
}

/**
 * Keeps an open stream's credential honest: ends it (once, through `onInvalid`) at its
 * jittered expiry point, and when a periodic TokenReview no longer accepts the token
 * (ServiceAccount deleted or re-created, pod gone, token revoked) or reports another user.
 * So after a credential stops holding, a stream gets no push later than 1.5 review
 * intervals (streams on one token share an answer up to half an interval old) plus one
 * review's round trip. Returns the function that stops watching.
 */
export function watchCredential(opts: CredentialWatchOptions): () => void {
  const { credential, onInvalid } = opts;
  const now = opts.now ?? Date.now;
  let done = false;
  const timers: NodeJS.Timeout[] = [];
  const stop = (): void => {
    done = true;
    for (const t of timers) clearTimeout(t);
  };
  const invalid = (reason: string): void => {
    if (done) return;
    stop();
    onInvalid(reason);
  };
  if (credential.expiresAt !== undefined) {
    const at = streamDeadlineMs(credential.expiresAt - now(), opts.random);
    if (at <= MAX_TIMER_MS) {
      const t = setTimeout(() => invalid('the bearer token nears its expiry: reconnect with the current token'), at);
      t.unref();
      timers.push(t);
    }
  }
  const token = credential.token;
  if (token !== undefined) {
    let reviewing = false;
    const t = setInterval(() => {
      if (reviewing || done) return;
      reviewing = true;
      opts
        .review(token)
        .then(
          (r) => {
            if (!r) invalid('the bearer token is no longer accepted by TokenReview');
            else if (r.user.username !== credential.user.username || r.user.uid !== credential.user.uid) {
              invalid('the bearer token now stands for another user');
            }
          },
          (err: unknown) => {
            // The API server has been away longer than a stale answer may stand.
            opts.logger.warn({ err: (err as Error).message }, 'TokenReview of an open stream failed');
            invalid('the bearer token could not be reviewed again');
          },
        )
        .finally(() => {
          reviewing = false;
        });
    }, opts.reviewIntervalMs);
    t.unref();
    timers.push(t);
  }
  return stop;
}
