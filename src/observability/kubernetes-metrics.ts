import { Counter } from 'prom-client';
import type { Metrics } from './metrics.js';

/** Metrics of the Kubernetes component; labels are fixed small sets, never names or tokens. */
export class KubernetesMetrics {
  readonly watchRestarts: Counter<'resource' | 'reason'>;
  readonly reviews: Counter<'review' | 'result'>;
  readonly events: Counter<'outcome'>;

  constructor(metrics: Metrics, reachable: () => boolean) {
    const registers = [metrics.registry];
    this.watchRestarts = new Counter({
      name: 'envoy_sds_kubernetes_watch_restarts_total',
      help: 'Watches started again, by reason (ended, gone = 410 re-list, silent, error).',
      labelNames: ['resource', 'reason'] as const,
      registers,
    });
    this.reviews = new Counter({
      name: 'envoy_sds_kubernetes_reviews_total',
      help: 'TokenReview and SubjectAccessReview answers, by result (cached = answered from the cache).',
      labelNames: ['review', 'result'] as const,
      registers,
    });
    this.events = new Counter({
      name: 'envoy_sds_kubernetes_rejection_events_total',
      help: 'Kubernetes Events recording rejected Secrets/ConfigMaps, by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    });
    metrics.addCollectedGauge(
      'envoy_sds_kubernetes_api_reachable',
      '1 while every list/watch is connected to the Kubernetes API, 0 while serving the last known state.',
      () => (reachable() ? 1 : 0),
    );
  }
}
