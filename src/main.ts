import { LocalPolicy } from './authz/local-policy.js';
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
}

/** The one place that wires sources, store, transport and observability together. */
export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true });
  const store = new SecretStore({
    logger,
    limits: { maxBytes: config.limits.maxSecretBytes },
    onOutcome: (origin, outcome) => metrics.updates.inc({ source: origin.source, outcome }),
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

  const deps: StreamDeps = {
    store,
    authenticator: opts.authenticator ?? new PeerAuthenticator(),
    authorizer: opts.authorizer ?? new LocalPolicy(config.authorization.rules),
    registry,
    metrics,
    logger,
    limits: { ...DEFAULT_REQUEST_LIMITS, maxNamesPerStream: config.limits.maxNamesPerStream },
  };

  const files = new FileSource({
    store,
    logger: logger.child({ source: 'files' }),
    secrets: config.secrets,
    ...(opts.fileSettleMs !== undefined ? { settleMs: opts.fileSettleMs } : {}),
  });
  await files.start();

  const grpc = new GrpcListeners(config, deps, logger);
  const bound = await grpc.start();

  let http: HttpServer | undefined;
  let httpAddress: string | undefined;
  if (config.http) {
    http = new HttpServer({
      address: config.http.address,
      logger,
      metrics,
      readiness: () => {
        const missing = config.secrets.filter((s) => !store.get(s.name)).map((s) => `secret ${s.name} not loaded`);
        return { ready: missing.length === 0, reasons: missing };
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
          watchers: store.watcherCount(s.name),
        })),
        streams: registry.list().map((s) => s.toJSON((n) => store.get(n)?.version)),
      }),
      ...(opts.httpRoutes ? { prefixRoutes: opts.httpRoutes } : {}),
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
        registry.endAll();
        await grpc.stop(config.drainSeconds * 1000);
        await http?.stop();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}
