import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from './version.js';

/** Label values known in advance, so every series exists at zero before its first event. */
const PROTOCOLS = ['sotw', 'delta', 'ads', 'ads-delta'] as const;
const SOURCES = ['file', 'kubernetes', 'issuer'] as const;
const OUTCOMES = ['created', 'updated', 'unchanged', 'rejected', 'superseded'] as const;
const BAD_REQUEST_REASONS = ['type_url', 'too_many_names', 'bad_name'] as const;

/** One certificate the store serves, for the expiry gauges. */
export interface ServedCertificate {
  name: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * A family of series by `protocol` that the stream path moves (per stream, per push, per
 * ACK): counted in plain numbers and copied into its Prometheus metric when scraped.
 * prom-client hashes the labels object on every inc and dec (measured: about 2% of the
 * server's CPU in a connect storm of 10,000 streams).
 */
export class ProtocolSeries {
  private readonly counts = new Map<string, number>();
  private readonly metric: Counter<'protocol'> | Gauge<'protocol'>;

  constructor(registry: Registry, kind: 'counter' | 'gauge', name: string, help: string) {
    const counts = this.counts;
    const config = { name, help, labelNames: ['protocol'] as const, registers: [registry] };
    if (kind === 'counter') {
      this.metric = new Counter({
        ...config,
        collect(this: Counter<'protocol'>) {
          this.reset();
          for (const [protocol, n] of counts) this.inc({ protocol }, n);
        },
      });
    } else {
      this.metric = new Gauge({
        ...config,
        collect(this: Gauge<'protocol'>) {
          for (const [protocol, n] of counts) this.set({ protocol }, n);
        },
      });
    }
  }

  inc(labels: { protocol: string }, value = 1): void {
    this.counts.set(labels.protocol, (this.counts.get(labels.protocol) ?? 0) + value);
  }

  /** Gauges only. */
  dec(labels: { protocol: string }, value = 1): void {
    this.inc(labels, -value);
  }

  /** The series as prom-client reports them (what a scrape shows). */
  get(): ReturnType<Counter<'protocol'>['get']> {
    return this.metric.get();
  }
}

/**
 * The server's Prometheus metrics. Labels are bounded sets (protocol, outcome, source
 * kind): never a node id or anything a client controls, so a fleet of gateways cannot
 * blow up the series count. The one exception is the expiry gauges' `name`, as in
 * cert-manager: it is a secret the store holds (declared by the operator or a watched
 * object), never a name a client asked for.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly streamsOpen = new ProtocolSeries(this.registry, 'gauge', 'envoy_sds_streams_open', 'Open discovery streams.');
  readonly streamsTotal = new ProtocolSeries(this.registry, 'counter', 'envoy_sds_streams_total', 'Discovery streams opened.');
  readonly pushes = new ProtocolSeries(this.registry, 'counter', 'envoy_sds_pushes_total', 'Secret resources sent to clients.');
  readonly acks = new ProtocolSeries(this.registry, 'counter', 'envoy_sds_acks_total', 'Responses acknowledged by clients.');
  readonly nacks = new ProtocolSeries(
    this.registry,
    'counter',
    'envoy_sds_nacks_total',
    'Responses rejected by clients (requests carrying error_detail).',
  );
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
  readonly httpRefused = new Counter({
    name: 'envoy_sds_http_refused_total',
    help: 'HTTP requests refused before any route: a Host that is not this server (DNS rebinding), or a cross-site state change.',
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
  readonly buildInfo = new Gauge({
    name: 'envoy_sds_build_info',
    help: 'Always 1; the labels say which build and runtime are running.',
    labelNames: ['version', 'node_version'] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: VERSION, node_version: process.version }, 1);
    // Series exist from the start, so rate() and alerts see 0 rather than nothing.
    for (const protocol of PROTOCOLS) {
      for (const c of [this.streamsOpen, this.streamsTotal, this.pushes, this.acks, this.nacks]) c.inc({ protocol }, 0);
    }
    this.pushes.inc({ protocol: 'fetch' }, 0);
    for (const reason of BAD_REQUEST_REASONS) this.badRequests.inc({ reason }, 0);
    for (const source of SOURCES) for (const outcome of OUTCOMES) this.updates.inc({ source, outcome }, 0);
    this.staleNonces.inc(0);
    this.denied.inc(0);
    this.rapidResets.inc(0);
  }

  /**
   * cert-manager's expiry gauges, per served certificate secret (the leaf of a
   * tls_certificate, the earliest-expiring CA of a bundle), read at scrape time.
   */
  trackCertificates(list: () => ServedCertificate[]): void {
    const series = (name: string, help: string, value: (c: ServedCertificate) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['name'] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const c of list()) this.set({ name: c.name }, value(c));
        },
      });
    series(
      'envoy_sds_certificate_expiration_timestamp_seconds',
      'The date after which the served certificate expires (Unix seconds).',
      (c) => Math.floor(c.notAfter.getTime() / 1000),
    );
    series(
      'envoy_sds_certificate_not_before_timestamp_seconds',
      'The date before which the served certificate is not valid (Unix seconds).',
      (c) => Math.floor(c.notBefore.getTime() / 1000),
    );
  }

  /** A gauge with labels, computed at scrape time. */
  addLabelledCollectedGauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: () => Array<{ labels: Record<L, string>; value: number }>,
  ): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of collect()) this.set(s.labels as Partial<Record<L, string>>, s.value);
      },
    });
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
