import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The server's Prometheus metrics. Labels are bounded sets (protocol, outcome, source
 * kind): never a node id, a secret name or anything a client controls, so a fleet of
 * gateways cannot blow up the series count.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly streamsOpen = new Gauge({
    name: 'envoy_sds_streams_open',
    help: 'Open discovery streams.',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly streamsTotal = new Counter({
    name: 'envoy_sds_streams_total',
    help: 'Discovery streams opened.',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'envoy_sds_pushes_total',
    help: 'Secret resources sent to clients.',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly acks = new Counter({
    name: 'envoy_sds_acks_total',
    help: 'Responses acknowledged by clients.',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly nacks = new Counter({
    name: 'envoy_sds_nacks_total',
    help: 'Responses rejected by clients (requests carrying error_detail).',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly staleNonces = new Counter({
    name: 'envoy_sds_stale_nonce_requests_total',
    help: 'Requests ignored because their nonce was not the latest sent on the stream.',
    registers: [this.registry],
  });
  readonly denied = new Counter({
    name: 'envoy_sds_denied_total',
    help: 'Secret names refused to a caller by authorization.',
    registers: [this.registry],
  });
  readonly badRequests = new Counter({
    name: 'envoy_sds_bad_requests_total',
    help: 'Requests refused as malformed or over a limit.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly updates = new Counter({
    name: 'envoy_sds_secret_updates_total',
    help: 'Secret updates offered to the store, by outcome.',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly pushLatency = new Histogram({
    name: 'envoy_sds_push_fanout_seconds',
    help: 'Time from a store update until it is written to every subscribed stream.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly rapidResets = new Counter({
    name: 'envoy_sds_rapid_resets_total',
    help: 'Streams reset by the client before their first request was processed (HTTP/2 rapid reset).',
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'envoy_sds_connections_closed_by_policy_total',
    help: 'HTTP/2 connections the server closed for abuse or silence, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Adds a gauge computed at scrape time (for state that lives elsewhere). */
  addCollectedGauge(name: string, help: string, collect: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(collect());
      },
    });
  }
}
