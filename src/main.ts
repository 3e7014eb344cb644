import { hostname } from 'node:os';
import { CaKeyWithholding } from './authz/ca-key-withholding.js';
import { LocalPolicy } from './authz/local-policy.js';
import type { ServerComponent } from './component.js';
import { componentsFor } from './components.js';
import type { Authenticator, Authorizer } from './authz/authorizer.js';
import type { ServerConfig } from './config/server-config.js';
import { deliveryReport, type NodeDelivery } from './delivery/delivery-report.js';
import { httpOptions, serverReadiness } from './http-wiring.js';
import { HttpServer, type RouteHandler } from './observability/http-server.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { bindError, checkListenerFiles, grpcBindError } from './config/startup-checks.js';
import { clientBounds } from './sds/client-bounds.js';
import type { StreamDeps } from './sds/stream-driver.js';
import { StreamRegistry } from './sds/stream-status.js';
import { FileSource } from './sources/files/file-source.js';
import { RejectionLog } from './store/rejection-log.js';
import type { MaterialValidator } from './store/material-validator.js';
import { SecretStore } from './store/secret-store.js';
import { defaultValidationWorkers, ValidationPool } from './store/validation-pool.js';
import { GrpcJsListeners } from './transport/grpcjs-listeners.js';
import { SdsListeners, type SdsTransport } from './transport/sds-listeners.js';
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
  /** Where SecretStore.offer() validates; defaults to a ValidationPool of `validation.workers`. */
  validator?: MaterialValidator;
  /** The gRPC server: ours on node:http2 (default), or grpc-js for benchmark comparison. */
  transport?: 'http2' | 'grpc-js';
  /** Where the private-key audit trail goes (default stdout, its own logger). */
  auditDestination?: NodeJS.WritableStream;
}

/** The one place that wires sources, store, transport and observability together. */
export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true });
  const rejections = new RejectionLog();
  const workers = config.validation.workers ?? defaultValidationWorkers();
  const validator = opts.validator ?? (workers > 0 ? new ValidationPool({ workers, logger }) : undefined);
  const store = new SecretStore({
    logger,
    ...(validator ? { validator } : {}),
    limits: { maxBytes: config.limits.maxSecretBytes },
    onOutcome: (origin, outcome) => metrics.updates.inc({ source: origin.source, outcome }),
    onRejected: (r) => rejections.record(r),
  });
  const registry = new StreamRegistry();
  metrics.addCollectedGauge('envoy_sds_secrets', 'Secrets held by the store.', () => store.size);
  metrics.addCollectedGauge(
    'envoy_sds_validations_pending',
    'Secret updates waiting for, or in, validation by the worker pool.',
    () => store.pendingOffers,
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
  const withheld = (name: string) => components.some((c) => c.caKeyNames?.().has(name) ?? false);
  metrics.addCollectedGauge(
    'envoy_sds_secrets_with_warnings',
    'Secrets served with a warning: a certificate expired or not yet valid, a CA certificate (CA:TRUE) with its key.',
    // A withheld CA key pair is never served, so its CA:TRUE is no warning.
    () => store.all().filter((s) => s.warnings.length > 0 && !withheld(s.name)).length,
  );

  const deps = {
    store,
    authenticator: opts.authenticator ?? offered((c) => c.authenticator?.()) ?? new PeerAuthenticator({ trustLoopback: config.trustLoopback }),
    authorizer: withheldCaKeys(opts.authorizer ?? offered((c) => c.authorizer?.()) ?? new LocalPolicy(config.authorization.rules), components, logger),
    registry,
    metrics,
    logger,
    ...clientBounds(config.limits, logger),
    audit: new KeyDeliveryAudit(createAuditLogger(opts.auditDestination)),
  } satisfies StreamDeps;

  const files = new FileSource({
    store,
    logger: logger.child({ source: 'files' }),
    secrets: [...config.secrets, ...components.flatMap((c) => c.fileSecrets?.() ?? [])],
    maxFileBytes: config.limits.maxSecretBytes,
    readTimeoutMs: config.limits.fileReadTimeoutMs,
    ...(opts.fileSettleMs !== undefined ? { settleMs: opts.fileSettleMs } : {}),
  });

  const replica = process.env['POD_NAME'] ?? hostname();
  const deliveryRows = () => deliveryReport(replica, registry.list(), (n) => store.get(n));
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

  // Every listener is bound before any component starts: a port that is taken ends the
  // start here, before a watch, an issuance or a file source has begun (nothing is left
  // running half alive), and is reported as the config field to fix.
  checkListenerFiles(config);
  const readiness = serverReadiness(config, store, components, rejections);
  const grpc: SdsTransport =
    opts.transport === 'grpc-js'
      ? new GrpcJsListeners(config, deps, logger)
      : new SdsListeners(config, deps, logger, () => readiness().ready);
  const http = config.http
    ? new HttpServer(httpOptions({ config, http: config.http, store, registry, rejections, metrics, logger, components, withheld, replica, fleetRows, readiness, extraRoutes: opts.httpRoutes }))
    : undefined;
  let bound: Awaited<ReturnType<SdsTransport['start']>>;
  let httpAddress: string | undefined;
  try {
    bound = await grpc.start();
  } catch (err) {
    await grpc.stop(0).catch(() => undefined);
    throw grpcBindError(err, config.grpc);
  }
  try {
    httpAddress = await http?.start();
  } catch (err) {
    await grpc.stop(0).catch(() => undefined);
    throw bindError(err, 'http.address', config.http!.address);
  }

  const started: ServerComponent[] = [];
  try {
    await files.start();
    for (const c of components) {
      started.push(c);
      await c.start({ config, store, logger: logger.child({ component: c.name }), metrics, deliveryRows });
    }
  } catch (err) {
    files.stop();
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    await grpc.stop(0).catch(() => undefined);
    await http?.stop();
    throw err;
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
        // The transport ends streams connection by connection, spread over the drain;
        // endAll() then ends whatever a transport left open.
        const drained = grpc.stop(config.drainSeconds * 1000);
        if (opts.transport === 'grpc-js') registry.endAll();
        await drained;
        registry.endAll();
        await http?.stop();
        await validator?.close();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/** A CA's private key is withheld whatever the policy says (Envoy never needs one). */
function withheldCaKeys(policy: Authorizer, components: ServerComponent[], logger: Logger): Authorizer {
  const knowing = components.filter((c) => c.caKeyNames);
  if (knowing.length === 0) return policy;
  return new CaKeyWithholding(policy, (name) => knowing.some((c) => c.caKeyNames!().has(name)), logger);
}
