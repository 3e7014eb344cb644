import { hostname } from 'node:os';
import { CaKeyWithholding } from './authz/ca-key-withholding.js';
import { LocalPolicy } from './authz/local-policy.js';
import type { Authenticator, Authorizer } from './authz/authorizer.js';
import { PeerAuthenticator } from './authz/peer-authenticator.js';
import { createAuditLogger, KeyDeliveryAudit } from './observability/key-delivery-audit.js';
import { parseKubernetesConfig, type KubernetesConfig } from './config/kubernetes-config.js';
import type { ServerConfig } from './config/server-config.js';
import { bindError, checkListenerFiles, grpcBindError } from './config/startup-checks.js';
import { ackGate } from './delivery/ack-gate.js';
import { deliveryReport, type NodeDelivery } from './delivery/delivery-report.js';
import { httpOptions, serverReadiness, type ServerPart } from './http-wiring.js';
import type { RotationContext } from './issuance/ca-rotation/ca-rotations.js';
import type { IssuanceEngine } from './issuance/engine.js';
import { parseIssuanceConfig, type IssuanceConfig } from './issuance/issuance-config.js';
import { issuanceEngine } from './issuance-wiring.js';
import { kubernetesAccess, KubernetesWatch, SharedKubeClient, type KubernetesAccess } from './kubernetes-wiring.js';
import { servedSecretName } from './kubernetes/secret-aliases.js';
import { ConfigError } from './config/config-error.js';
import { HttpServer, type RouteHandler } from './observability/http-server.js';
import { KubernetesMetrics } from './observability/kubernetes-metrics.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
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
  /** Defaults to the config's local policy (Kubernetes RBAC with a `kubernetes:` section). */
  authorizer?: Authorizer;
  authenticator?: Authenticator;
  /** Defaults true; tests turn process metrics off to keep registries independent. */
  defaultMetrics?: boolean;
  fileSettleMs?: number;
  httpRoutes?: Map<string, RouteHandler>;
  /** CA key pairs withheld besides the issuance engine's (e.g. another replica's engine names them). */
  caKeyNames?: ReadonlySet<string>;
  /** Where SecretStore.offer() validates; defaults to a ValidationPool of `validation.workers`. */
  validator?: MaterialValidator;
  /** The gRPC server: ours on node:http2 (default), or grpc-js for benchmark comparison. */
  transport?: 'http2' | 'grpc-js';
  /** Where the private-key audit trail goes (default stdout, its own logger). */
  auditDestination?: NodeJS.WritableStream;
}

/** The optional config sections, each parsed by its own part: throws a ConfigError when one is wrong. */
export interface OptionalSections {
  kubernetes?: KubernetesConfig;
  issuance?: IssuanceConfig;
}

export function parseSections(config: ServerConfig): OptionalSections {
  const kubernetes = config.kubernetes !== undefined ? parseKubernetesConfig(config.kubernetes) : undefined;
  // Sidecar mode speaks for the pod to callers on its Unix socket: without one it would serve no one.
  if (kubernetes?.sidecar && !config.grpc.unix)
    throw new ConfigError('kubernetes.sidecar', 'needs grpc.unix (the socket the gateway in this pod connects to)');
  const issuance =
    config.issuance !== undefined
      ? parseIssuanceConfig(config.issuance, {
          baseDir: config.configDir,
          reservedNames: config.secrets.map((s) => s.name),
          kubernetes: config.kubernetes !== undefined,
        })
      : undefined;
  return { ...(kubernetes ? { kubernetes } : {}), ...(issuance ? { issuance } : {}) };
}

/**
 * The one place that builds the server's parts and wires them: store, sources, Kubernetes
 * (one API client for all its users), issuance, transport and the HTTP port.
 */
export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true });
  const sections = parseSections(config);
  const rejections = new RejectionLog();
  const workers = config.validation.workers ?? defaultValidationWorkers();
  const validator = opts.validator ?? (workers > 0 ? new ValidationPool({ workers, logger }) : undefined);
  const store = secretStore(config, logger, metrics, rejections, validator);
  const registry = new StreamRegistry();
  const replica = process.env['POD_NAME'] ?? hostname();
  const deliveryRows = () => deliveryReport(replica, registry.list(), (n) => store.get(n));

  const kube = kubernetesClient(config, sections);
  // CA bundle holds are released by the fleet's ACKs (fleetRows is called only after start).
  const acknowledged = async (name: string, version: string) => {
    const gate = ackGate(await fleetDeliveries(() => fleetRows(kubernetes?.watch, deliveryRows)), [{ name, version }]);
    return gate.waiting.length === 0 && !gate.nack;
  };
  const kubernetes =
    sections.kubernetes && kube ? kubernetesParts(config, kube, { logger, metrics, store, deliveryRows, acknowledged }) : undefined;
  const issuance = sections.issuance ? issuanceEngine(config, sections.issuance, kube) : undefined;
  const isCaKey = (name: string) => (issuance?.caKeyNames().has(name) ?? false) || (opts.caKeyNames?.has(name) ?? false);
  // The same Secret asked for under another name (kubernetes-gateway://, sds://) is withheld too.
  const withheld = (name: string) => isCaKey(name) || isCaKey(servedSecretName(name, kube?.settings.sidecar?.namespace) ?? name);
  storeGauges(metrics, store, registry, withheld);
  // CA rotations read the store and the fleet's delivery rows.
  const rotationContext: RotationContext = {
    served: (n) => servedContent(store, n),
    deliveries: () => fleetDeliveries(() => fleetRows(kubernetes?.watch, deliveryRows)),
  };
  const deps = streamDeps(config, opts, {
    store,
    registry,
    metrics,
    logger,
    kubernetes: kubernetes?.access,
    withheld: issuance || opts.caKeyNames ? withheld : undefined,
  });
  const files = fileSource(config, opts, store, logger, issuance);
  const parts: ServerPart[] = [
    ...(kubernetes ? [kubernetes.watch] : []),
    ...(issuance ? [issuancePart(issuance, logger, metrics, rotationContext)] : []),
  ];

  // Every listener is bound before any part starts: a port that is taken ends the start
  // here, before a watch, an issuance or a file source has begun (nothing is left running
  // half alive), and is reported as the config field to fix.
  checkListenerFiles(config);
  const readiness = serverReadiness(config, store, parts, rejections);
  const grpc: SdsTransport =
    opts.transport === 'grpc-js'
      ? new GrpcJsListeners(config, deps, logger)
      : new SdsListeners(config, deps, logger, () => readiness().ready);
  const http = config.http
    ? new HttpServer(
        httpOptions({
          ...{ config, http: config.http, store, registry, rejections, metrics, logger, withheld, replica, readiness },
          fleetRows: () => fleetRows(kubernetes?.watch, deliveryRows),
          certificates: () => issuance?.certificates() ?? [],
          caRotations: () => issuance?.rotations.statuses() ?? [],
          bundleHolds: () => kubernetes?.watch.heldBundles() ?? [],
          routes: new Map([...(opts.httpRoutes ?? []), ...(issuance?.httpRoutes() ?? [])]),
        }),
      )
    : undefined;
  const { bound, httpAddress } = await bindListeners(config, grpc, http);

  // Closes what the parts share once they have stopped.
  const release = () => {
    kubernetes?.access.stop();
    kube?.client.close();
  };
  await startParts(files, parts, async () => {
    release();
    await grpc.stop(0).catch(() => undefined);
    await http?.stop();
  });

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
      stopping ??= drain({
        config,
        logger,
        registry,
        files,
        parts,
        release,
        grpc,
        http,
        validator,
        endEarly: opts.transport === 'grpc-js',
      });
      return stopping;
    },
  };
}

/** Stops the sources and parts, ends every stream over the drain, then closes the listeners. */
async function drain(s: {
  config: ServerConfig;
  logger: Logger;
  registry: StreamRegistry;
  files: FileSource;
  parts: readonly ServerPart[];
  release: () => void;
  grpc: SdsTransport;
  http: HttpServer | undefined;
  validator: MaterialValidator | undefined;
  /** grpc-js does not end its streams itself. */
  endEarly: boolean;
}): Promise<void> {
  s.logger.info({ streams: s.registry.size }, 'draining: ending streams so clients reconnect elsewhere');
  s.files.stop();
  for (const p of s.parts) await p.stop();
  s.release();
  // The transport ends streams connection by connection, spread over the drain;
  // endAll() then ends whatever a transport left open.
  const drained = s.grpc.stop(s.config.drainSeconds * 1000);
  if (s.endEarly) s.registry.endAll();
  await drained;
  s.registry.endAll();
  await s.http?.stop();
  await s.validator?.close();
  s.logger.info('stopped');
}

/** What every stream is handed: the store, who the caller is and what it may read, bounds, the key audit. */
function streamDeps(
  config: ServerConfig,
  opts: StartOptions,
  parts: {
    store: SecretStore;
    registry: StreamRegistry;
    metrics: Metrics;
    logger: Logger;
    kubernetes: KubernetesAccess | undefined;
    withheld: ((name: string) => boolean) | undefined;
  },
): StreamDeps & { metrics: Metrics } {
  const { store, registry, metrics, logger, kubernetes, withheld } = parts;
  const policy = opts.authorizer ?? kubernetes?.authorizer ?? new LocalPolicy(config.authorization.rules);
  return {
    store,
    authenticator: opts.authenticator ?? kubernetes?.authenticator ?? new PeerAuthenticator({ trustLoopback: config.trustLoopback }),
    // A CA's private key is withheld whatever the policy says (Envoy never needs one).
    authorizer: withheld ? new CaKeyWithholding(policy, withheld, logger) : policy,
    registry,
    metrics,
    logger,
    ...clientBounds(config.limits, logger),
    audit: new KeyDeliveryAudit(createAuditLogger(opts.auditDestination)),
  };
}

function fileSource(
  config: ServerConfig,
  opts: StartOptions,
  store: SecretStore,
  logger: Logger,
  issuance: IssuanceEngine | undefined,
): FileSource {
  return new FileSource({
    store,
    logger: logger.child({ source: 'files' }),
    // The engine's issued files are served like any declared file.
    secrets: [...config.secrets, ...(issuance?.fileSecrets() ?? [])],
    maxFileBytes: config.limits.maxSecretBytes,
    readTimeoutMs: config.limits.fileReadTimeoutMs,
    ...(opts.fileSettleMs !== undefined ? { settleMs: opts.fileSettleMs } : {}),
  });
}

/** Every replica's delivery rows, or this replica's (saying why) when the fleet cannot be read. */
async function fleetRows(
  watch: KubernetesWatch | undefined,
  deliveryRows: () => NodeDelivery[],
): Promise<{ nodes: NodeDelivery[]; fleet: boolean; error?: string }> {
  const fleet = watch?.fleetDeliveries();
  if (!fleet) return { nodes: deliveryRows(), fleet: false };
  try {
    return { nodes: await fleet, fleet: true };
  } catch (err) {
    // The API server is away: answer for this replica, and say so.
    return { nodes: deliveryRows(), fleet: false, error: (err as Error).message };
  }
}

/** The file source, then each part in order; a failure stops what started (in reverse) and rethrows. */
async function startParts(files: FileSource, parts: readonly ServerPart[], onFailure: () => Promise<void>): Promise<void> {
  const started: ServerPart[] = [];
  try {
    await files.start();
    for (const p of parts) {
      started.push(p);
      await p.start();
    }
  } catch (err) {
    files.stop();
    for (const p of started.reverse()) await p.stop().catch(() => undefined);
    await onFailure();
    throw err;
  }
}

function secretStore(
  config: ServerConfig,
  logger: Logger,
  metrics: Metrics,
  rejections: RejectionLog,
  validator: MaterialValidator | undefined,
): SecretStore {
  return new SecretStore({
    logger,
    ...(validator ? { validator } : {}),
    limits: { maxBytes: config.limits.maxSecretBytes },
    onOutcome: (origin, outcome) => metrics.updates.inc({ source: origin.source, outcome }),
    onRejected: (r) => rejections.record(r),
  });
}

function storeGauges(metrics: Metrics, store: SecretStore, registry: StreamRegistry, withheld: (name: string) => boolean): void {
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
  metrics.addCollectedGauge(
    'envoy_sds_secrets_with_warnings',
    'Secrets served with a warning: a certificate expired or not yet valid, a CA certificate (CA:TRUE) with its key.',
    // A withheld CA key pair is never served, so its CA:TRUE is no warning.
    () => store.all().filter((s) => s.warnings.length > 0 && !withheld(s.name)).length,
  );
}

/**
 * The server's one Kubernetes API client, when a part needs one: the `kubernetes:` section,
 * or issuance persisting to Kubernetes (which takes the same connection settings).
 */
function kubernetesClient(
  config: ServerConfig,
  sections: OptionalSections,
): { settings: KubernetesConfig; client: SharedKubeClient } | undefined {
  if (!sections.kubernetes && sections.issuance?.persistence !== 'kubernetes') return undefined;
  const settings = sections.kubernetes ?? parseKubernetesConfig(config.kubernetes);
  return { settings, client: new SharedKubeClient(settings) };
}

function kubernetesParts(
  config: ServerConfig,
  kube: { settings: KubernetesConfig; client: SharedKubeClient },
  deps: {
    logger: Logger;
    metrics: Metrics;
    store: SecretStore;
    deliveryRows: () => NodeDelivery[];
    acknowledged: (name: string, version: string) => Promise<boolean>;
  },
): { access: KubernetesAccess; watch: KubernetesWatch } {
  const logger = deps.logger.child({ component: 'kubernetes' });
  let watch: KubernetesWatch | undefined;
  const metrics = new KubernetesMetrics(deps.metrics, () => watch?.reachable() ?? false);
  const access = kubernetesAccess(kube.settings, {
    client: kube.client.get,
    logger,
    rules: config.authorization.rules,
    trustLoopback: config.trustLoopback,
    metrics,
  });
  watch = new KubernetesWatch(kube.settings, {
    client: kube.client,
    store: deps.store,
    logger,
    metrics,
    deliveryRows: deps.deliveryRows,
    gatewayReferences: access.gatewayReferences,
    acknowledged: deps.acknowledged,
  });
  return { access, watch };
}

function issuancePart(engine: IssuanceEngine, logger: Logger, metrics: Metrics, rotations: RotationContext): ServerPart {
  return {
    name: engine.name,
    start: () => engine.start({ logger: logger.child({ component: engine.name }), metrics, rotations }),
    stop: () => engine.stop(),
    readiness: () => engine.readiness(),
  };
}

/** A served name's version and PEM (chain or bundle), for the CA rotations' gate. */
function servedContent(store: SecretStore, name: string): { version: string; pem: string } | undefined {
  const s = store.get(name);
  return s && { version: s.version, pem: s.material.kind === 'tls_certificate' ? s.material.certificateChain : s.material.trustedCa };
}

/** The fleet's rows; the CA rotation gate never opens on one replica's view when the fleet's cannot be read. */
async function fleetDeliveries(fleetRows: () => Promise<{ nodes: NodeDelivery[]; error?: string }>): Promise<NodeDelivery[]> {
  const rows = await fleetRows();
  if (rows.error) throw new Error(`the fleet's delivery state cannot be read: ${rows.error}`);
  return rows.nodes;
}

/** Binds gRPC then HTTP; a failure closes what was bound and names the config field. */
async function bindListeners(
  config: ServerConfig,
  grpc: SdsTransport,
  http: HttpServer | undefined,
): Promise<{ bound: Awaited<ReturnType<SdsTransport['start']>>; httpAddress: string | undefined }> {
  let bound: Awaited<ReturnType<SdsTransport['start']>>;
  try {
    bound = await grpc.start();
  } catch (err) {
    await grpc.stop(0).catch(() => undefined);
    throw grpcBindError(err, config.grpc);
  }
  try {
    return { bound, httpAddress: await http?.start() };
  } catch (err) {
    await grpc.stop(0).catch(() => undefined);
    throw bindError(err, 'http.address', config.http?.address ?? '');
  }
}
