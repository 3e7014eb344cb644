import type { KubeClient } from '../../kubernetes/kube-client.js';
import type { Logger } from '../../observability/logger.js';
import { DecisionCache } from './decision-cache.js';
import type { ReviewedUser } from './token-reviewer.js';

/** The object a name is read from: a Secret, a ConfigMap, a BackendTLSPolicy. */
export interface ObjectRef {
  /** API group; '' (core) when absent. */
  group?: string;
  resource: 'secrets' | 'configmaps' | 'backendtlspolicies';
  namespace: string;
  name: string;
}

export interface AccessReviewerOptions {
  client: () => KubeClient;
  logger: () => Logger;
  allowTtlMs: number;
  denyTtlMs: number;
  /** While SubjectAccessReview fails, the last decision stands this long; then deny. */
  staleIfErrorMs: number;
  onReview?: (result: 'allowed' | 'denied' | 'error' | 'cached') => void;
}

/**
 * "May this user `get` this Secret (or ConfigMap)?", asked with SubjectAccessReview about
 * the user TokenReview reported (name, uid, groups, extra), so that a RoleBinding that
 * outlives its ServiceAccount does not speak for a token of the deleted one. RBAC (or
 * whatever authorizer the cluster runs) decides, we add no policy language. Decisions are
 * cached (allow longer than deny, so a new RoleBinding takes effect quickly), answered
 * synchronously when cached (the stream asks again before every push), and concurrent
 * questions share one review.
 */
export class AccessReviewer {
  private readonly cache = new DecisionCache<boolean>(50_000);
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private readonly grantWatches = new Map<string, { listeners: Set<() => void>; timer: NodeJS.Timeout }>();

  constructor(private readonly opts: AccessReviewerOptions) {}

  canGet(user: ReviewedUser, object: ObjectRef): boolean | Promise<boolean> {
    const key = keyOf(user, object);
    const cached = this.cache.fresh(key);
    if (cached !== undefined) {
      this.opts.onReview?.('cached');
      return cached;
    }
    return this.review(user, object, key);
  }

  /**
   * Calls `onGranted` once, when a denied (user, object) becomes allowed: asked
   * again every deny TTL while someone watches. Lets a stream that was denied at
   * subscribe be served soon after its RoleBinding appears. Returns the cancel function.
   */
  watchGrant(user: ReviewedUser, object: ObjectRef, onGranted: () => void): () => void {
    const key = keyOf(user, object);
    let w = this.grantWatches.get(key);
    if (!w) {
      const listeners = new Set<() => void>();
      const timer = setInterval(() => {
        this.review(user, object, key).then(
          (allowed) => {
            if (!allowed || this.grantWatches.get(key)?.timer !== timer) return;
            clearInterval(timer);
            this.grantWatches.delete(key);
            for (const l of listeners) l();
          },
          () => {},
        );
      }, this.opts.denyTtlMs);
      timer.unref();
      w = { listeners, timer };
      this.grantWatches.set(key, w);
    }
    const entry = w;
    entry.listeners.add(onGranted);
    return () => {
      entry.listeners.delete(onGranted);
      if (entry.listeners.size === 0 && this.grantWatches.get(key) === entry) {
        clearInterval(entry.timer);
        this.grantWatches.delete(key);
      }
    };
  }

  /** Stops every grant watch (shutdown). */
  stop(): void {
    for (const w of this.grantWatches.values()) clearInterval(w.timer);
    this.grantWatches.clear();
  }

  private review(user: ReviewedUser, object: ObjectRef, key: string): Promise<boolean> {
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.ask(user, object, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async ask(user: ReviewedUser, object: ObjectRef, key: string): Promise<boolean> {
    let allowed: boolean;
    try {
      const res = await this.opts
        .client()
        .request<{ status?: { allowed?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: user.username,
              ...(user.uid ? { uid: user.uid } : {}),
              groups: user.groups,
              ...(user.extra ? { extra: user.extra } : {}),
              resourceAttributes: {
                namespace: object.namespace,
                verb: 'get',
                group: object.group ?? '',
                resource: object.resource,
                name: object.name,
              },
            },
          },
        });
      allowed = res.status?.allowed === true;
    } catch (err) {
      this.opts.onReview?.('error');
      // RBAC cannot change while the API server is away: the last decision stands.
      const recent = this.cache.recent(key, this.opts.staleIfErrorMs);
      this.opts.logger().warn(
        {
          user: user.username,
          object: `${object.resource}/${object.namespace}/${object.name}`,
          err: (err as Error).message,
          decision: recent ?? false,
        },
        'SubjectAccessReview failed; using the last decision (deny if none)',
      );
      return recent ?? false;
    }
    this.opts.onReview?.(allowed ? 'allowed' : 'denied');
    this.cache.set(key, allowed, allowed ? this.opts.allowTtlMs : this.opts.denyTtlMs);
    return allowed;
  }
}

/** Everything the review is asked about: the same question, the same answer. */
function keyOf(user: ReviewedUser, object: ObjectRef): string {
  return JSON.stringify([
    user.username,
    user.uid ?? '',
    user.groups,
    user.extra ?? {},
    object.group ?? '',
    object.resource,
    object.namespace,
    object.name,
  ]);
}
