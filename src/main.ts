import { hostname } from 'node:os';
import { LocalPolicy } from './authz/local-policy.js';
import { deliveryReport, type NodeDelivery } from './delivery/delivery-report.js';
import { deliveryRoute } from './delivery/delivery-route.js';
import { secretRoute } from './delivery/secret-route.js';
import { RejectionLog } from './store/rejection-log.js';
import type { Rejection } from './store/secret-store.js';
import type { ServerComponent } from './component.js';
import { componentsFor } from './components.js';
import type { Authenticator, Authorizer } from './authz/authorizer.js';
import type { ServerConfig } from './config/server-config.js';
import { HttpServer, type RouteHandler } from './observability/http-server.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { DEFAULT_REQUEST_LIMITS } from './sds/request-checks.js';
import type { StreamDeps } from './sds/stream-driver.js';
import { StreamRegistry } from './sds/stream-status.js';
import { FileSource } from './sources/files/file-source.js';
import { SecretStore } from './store/secret-store.js';
import { GrpcListeners } from './transport/grpc-listeners.js';
import { PeerAuthenticator } from './transport/peer-authenticator.js';
import { createAuditLogger, KeyDeliveryAudit } from './observability/key-delivery-audit.js';

export interface RunningServer {
  grpcAddress?: string;
  unixPath?: string;
  httpAddress?: string;
  store: SecretStore;
  registry: StreamRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Ends every stream with OK, stops listening, and waits for the drain. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Defaults to the config's local policy. */
  authorizer?: Authorizer;
  authenticator?: Authenticator;
  /** Defaults true; tests turn process metrics off to keep registries independent. */
  defaultMetrics?: boolean;
  fileSettleMs?: number;
  httpRoutes?: Map<string, RouteHandler>;
  /** Defaults to componentsFor(config). */
  components?: ServerComponent[];
  /** Where the private-key audit trail goes (default stdout, its own logger). */
  auditDestination?: NodeJS.WritableStream;
}

/** The one place that wires sources, store, transport and observability together. */
export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true });
  const rejections = new RejectionLog();
  const store = new SecretStore({
    logger,
    limits: { maxBytes: config.limits.maxSecretBytes },
    onOutcome: (origin, outcome) => metrics.updates.inc({ source: origin.source, outcome }),
    onRejected: (r) => rejections.record(r),
  });
  const registry = new StreamRegistry();
  metrics.addCollectedGauge('envoy_sds_secrets', 'Secrets held by the store.', () => store.size);
  metrics.addCollectedGauge(
    'envoy_sds_secrets_with_warnings',
    'Secrets served although a certificate in them has expired or is not yet valid.',
    () => store.all().filter((s) => s.warnings.length > 0).length,
  );
  metrics.addCollectedGauge(
    'envoy_sds_deliveries_behind',
    'Subscribed (stream, secret) pairs whose last ACKed version is not the current one.',
    () => registry.countBehind((n) => store.get(n)?.version),
  );

  metrics.trackCertificates(() => store.all().map((s) => ({ name: s.name, notBefore: s.facts.notBefore, notAfter: s.facts.notAfter })));

  const components = opts.components ?? componentsFor(config);
  const offered = <T>(pick: (c: ServerComponent) => T | undefined): T | undefined =>
    components.map(pick).find((x) => x !== undefined);

  const deps: StreamDeps = {
    store,
    authenticator: opts.authenticator ?? offered((c) => c.authenticator?.()) ?? new PeerAuthenticator(),
    authorizer: opts.authorizer ?? offered((c) => c.authorizer?.()) ?? new LocalPolicy(config.authorization.rules),
    registry,
    metrics,
    logger,
    limits: { ...DEFAULT_REQUEST_LIMITS, maxNamesPerStream: config.limits.maxNamesPerStream },
    audit: new KeyDeliveryAudit(createAuditLogger(opts.auditDestination)),
  };

  const files = new FileSource({
    store,
    logger: logger.child({ source: 'files' }),
    secrets: [...config.secrets, ...components.flatMap((c) => c.fileSecrets?.() ?? [])],
    ...(opts.fileSettleMs !== undefined ? { settleMs: opts.fileSettleMs } : {}),
  });
  await files.start();
  const replica = process.env['POD_NAME'] ?? hostname();
  const deliveryRows = () => deliveryReport(replica, registry.list(), (n) => store.get(n));
  for (const c of components) {
    await c.start({ config, store, logger: logger.child({ component: c.name }), metrics, deliveryRows });
  }
  const fleetRows = async (): Promise<{ nodes: NodeDelivery[]; fleet: boolean; error?: string }> => {
    const fleet = offered((c) => c.fleetDeliveries?.());
    if (!fleet) return { nodes: deliveryRows(), fleet: false };
    try {
      return { nodes: await fleet, fleet: true };
    } catch (err) {
      // The API server is away: answer for this replica, and say so.
      return { nodes: deliveryRows(), fleet: false, error: (err as Error).message };
    }
  };

  const grpc = new GrpcListeners(config, deps, logger);
  const bound = await grpc.start();

  const rejectionOf = (name: string) => {
    const r = rejections.get(name);
    return r ? RejectionLog.toJSON(r) : null;
  };
  let http: HttpServer | undefined;
  let httpAddress: string | undefined;
  if (config.http) {
    http = new HttpServer({
      address: config.http.address,
      logger,
      metrics,
      readiness: () => {
        const reasons = config.secrets.filter((s) => !store.get(s.name)).map((s) => notLoaded(s.name, rejections.get(s.name)));
        let ready = reasons.length === 0;
        for (const c of components) {
          const r = c.readiness?.();
          if (!r) continue;
          ready &&= r.ready;
          reasons.push(...r.reasons.map((x) => `${c.name}: ${x}`));
        }
        return { ready, reasons };
      },
      status: () => ({
        secrets: store.all().map((s) => ({
          name: s.name,
          kind: s.kind,
          version: s.version,
          origin: `${s.origin.source}:${s.origin.ref}`,
          subject: s.facts.subject,
          notAfter: s.facts.notAfter.toISOString(),
          warnings: s.warnings,
          lastRejection: rejectionOf(s.name),
          watchers: store.watcherCount(s.name),
        })),
        // Declared but not served: with the cause when one is known.
        notLoaded: config.secrets.filter((s) => !store.get(s.name)).map((s) => ({ name: s.name, lastRejection: rejectionOf(s.name) })),
        streams: registry.list().map((s) => s.toJSON((n) => store.get(n)?.version)),
      }),
      prefixRoutes: new Map([
        ['/delivery', deliveryRoute(fleetRows)],
        ['/secrets/', secretRoute((n) => store.get(n), rejectionOf)],
        ...(opts.httpRoutes ?? []),
        ...components.flatMap((c) => [...(c.httpRoutes?.() ?? [])]),
      ]),
    });
    httpAddress = await http.start();
  }

  let stopping: Promise<void> | undefined;
  return {
    ...(bound.tcp ? { grpcAddress: bound.tcp } : {}),
    ...(bound.unix ? { unixPath: bound.unix } : {}),
    ...(httpAddress ? { httpAddress } : {}),
    store,
    registry,
    metrics,
    logger,
    stop() {
      stopping ??= (async () => {
        logger.info({ streams: registry.size }, 'draining: ending streams so clients reconnect elsewhere');
        files.stop();
        for (const c of components) await c.stop();
        registry.endAll();
        await grpc.stop(config.drainSeconds * 1000);
        await http?.stop();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/** /readyz's line for a declared secret that is not served, with the cause when known. */
function notLoaded(name: string, rejection: Rejection | undefined): string {
  if (!rejection) return `secret ${name} not loaded (no valid content yet; see the log for the source's error)`;
  return `secret ${name} not loaded: update rejected (${rejection.code}) at ${rejection.at.toISOString()}: ${rejection.message}`;
}
