import type { KubeClient } from '../../kubernetes/kube-client.js';
import { KubeApiError } from '../../kubernetes/kube-errors.js';
import type { Logger } from '../../observability/logger.js';
import { DecisionCache } from './decision-cache.js';
import type { ReviewedUser } from './token-reviewer.js';

/** TokenReview's extra for a token bound to a pod (projected ServiceAccount tokens are). */
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
/** The label Gateway API implementations (Istio, Envoy Gateway's merged mode) put on a Gateway's pods. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

export interface PodGatewaysOptions {
  client: () => KubeClient;
  logger: () => Logger;
  ttlMs: number;
  staleIfErrorMs: number;
}

/**
 * Which Gateway a caller runs: its token names its pod (TokenReview's pod-name and pod-uid
 * extra, set by the API server, not by the caller), and that pod's gateway-name label
 * names a Gateway of the pod's namespace. A pod of another uid (deleted and made again
 * under the same name) is not the token's pod. Answers are cached for `ttlMs`, answered
 * synchronously while fresh, and one GET serves concurrent questions.
 */
export class PodGateways {
  private readonly cache = new DecisionCache<string | null>(50_000);
  private readonly inFlight = new Map<string, Promise<string | undefined>>();

  constructor(private readonly opts: PodGatewaysOptions) {}

  /** The Gateway's name, or undefined (no pod in the token, no such pod, no label). */
  gatewayOf(user: ReviewedUser, namespace: string): string | undefined | Promise<string | undefined> {
    const pod = user.extra?.[POD_NAME_EXTRA]?.[0];
    const uid = user.extra?.[POD_UID_EXTRA]?.[0];
    if (!pod || !uid) return undefined;
    const key = `${namespace}/${pod}/${uid}`;
    const cached = this.cache.fresh(key);
    if (cached !== undefined) return cached ?? undefined;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.ask(namespace, pod, uid, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async ask(namespace: string, pod: string, uid: string, key: string): Promise<string | undefined> {
    let gateway: string | null;
    try {
      const obj = await this.opts
        .client()
        .request<{ metadata?: { uid?: string; labels?: Record<string, string> } }>(
          'GET',
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`,
        );
      gateway = obj.metadata?.uid === uid ? (obj.metadata.labels?.[GATEWAY_NAME_LABEL] ?? null) : null;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) {
        gateway = null;
      } else {
        const recent = this.cache.recent(key, this.opts.staleIfErrorMs);
        this.opts
          .logger()
          .warn(
            { pod: `${namespace}/${pod}`, err: (err as Error).message, decision: recent ?? null },
            "could not read the caller's pod; using the last answer (none if none)",
          );
        return recent ?? undefined;
      }
    }
    this.cache.set(key, gateway, this.opts.ttlMs);
    return gateway ?? undefined;
  }
}
