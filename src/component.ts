import type { Authenticator, Authorizer } from './authz/authorizer.js';
import type { FileSecretConfig, ServerConfig } from './config/server-config.js';
import type { Readiness, RouteHandler } from './observability/http-server.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { NodeDelivery } from './delivery/delivery-report.js';
import type { CertificateReport } from './issuance/engine.js';
import type { SecretStore } from './store/secret-store.js';

export interface ComponentContext {
  config: ServerConfig;
  store: SecretStore;
  logger: Logger;
  metrics: Metrics;
  /** This replica's delivery state, live (for components that share it with the fleet). */
  deliveryRows: () => NodeDelivery[];
  /** The fleet's delivery state (every replica), or this replica's with the error that kept the fleet's away. */
  fleetRows?: () => Promise<{ nodes: NodeDelivery[]; fleet: boolean; error?: string }>;
}

/**
 * An optional part of the server (the Kubernetes source, the issuance engine), built
 * from its own config section. Constructors do no I/O; start() and stop() are explicit.
 * What a component offers the rest of the server is asked before start().
 */
export interface ServerComponent {
  readonly name: string;
  start(ctx: ComponentContext): Promise<void>;
  /** Stops watches and timers; called once, on shutdown. */
  stop(): Promise<void>;
  /** Contributes to /readyz. */
  readiness?(): Readiness;
  /** HTTP routes by path prefix (e.g. the ACME HTTP-01 solver). */
  httpRoutes?(): Map<string, RouteHandler>;
  /** PEM files the component writes, for the file source to watch and serve. */
  fileSecrets?(): FileSecretConfig[];
  /**
   * Served names that hold a CA's key pair (an issuer's CA, a Certificate with isCA): they
   * are denied to every caller; their `-cacert` bundles stay served. Asked on each check.
   */
  caKeyNames?(): ReadonlySet<string>;
  /** Replaces the transport-only identity (e.g. ServiceAccount tokens). */
  authenticator?(): Authenticator;
  /** Replaces the local policy (e.g. Kubernetes RBAC). */
  authorizer?(): Authorizer;
  /** Certificates the component issues, with their status (the status page lists them). */
  certificates?(): CertificateReport[];
  /** Sections this component adds to /status (e.g. `caRotations`). */
  statusSections?(): Record<string, unknown>;
  /** Every replica's delivery rows, this one's included; undefined when not available. */
  fleetDeliveries?(): Promise<NodeDelivery[]> | undefined;
}
