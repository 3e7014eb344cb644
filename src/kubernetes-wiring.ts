// main.ts's builders for the Kubernetes parts: one API client for the whole server, the
// identity and policy parts (TokenReview, SubjectAccessReview), and the watch (Secrets and
// ConfigMaps -> store, rejection Events, the fleet's delivery reports). main.ts decides
// which of them are built; these functions only assemble them.

import { AccessReviewer } from './authz/kubernetes/access-reviewer.js';
import { KubernetesAuthenticator } from './authz/kubernetes/kubernetes-authenticator.js';
import { GatewayApiAuthorizer } from './authz/kubernetes/gateway-api-authorizer.js';
import { KubernetesAuthorizer } from './authz/kubernetes/kubernetes-authorizer.js';
import { PodGateways } from './authz/kubernetes/pod-gateways.js';
import { ReviewedIdentities } from './authz/kubernetes/reviewed-identities.js';
import { TokenReviewer } from './authz/kubernetes/token-reviewer.js';
import { LocalPolicy, type PolicyRule } from './authz/local-policy.js';
import type { KubernetesConfig } from './config/kubernetes-config.js';
import type { NodeDelivery } from './delivery/delivery-report.js';
import { FleetReports } from './delivery/fleet-reports.js';
import { BundleHolds, type HeldBundle } from './sources/kubernetes/bundle-holds.js';
import { KubeClient } from './kubernetes/kube-client.js';
import { loadKubeConnection, type KubeConnection } from './kubernetes/kube-connection.js';
import type { Readiness } from './observability/http-server.js';
import type { KubernetesMetrics } from './observability/kubernetes-metrics.js';
import type { Logger } from './observability/logger.js';
import { ClusterTrustBundleSource } from './sources/kubernetes/cluster-trust-bundle-source.js';
import { GatewayApiSource } from './sources/kubernetes/gateway-api-source.js';
import { GatewayReferences } from './sources/kubernetes/gateway-references.js';
import { KubernetesSource, type SourceContext, type SourceExtension } from './sources/kubernetes/kubernetes-source.js';
import { RejectionEvents } from './sources/kubernetes/rejection-events.js';
import type { SecretStore } from './store/secret-store.js';

/**
 * The server's one Kubernetes API client (one connection pool, one token cache), shared by
 * the source, the reviews, the fleet reports and the issuance engine. The kubeconfig is
 * read at the first use, after the listeners are bound: building it does no I/O.
 */
export class SharedKubeClient {
  private client: KubeClient | undefined;
  private conn: KubeConnection | undefined;

  constructor(private readonly settings: Pick<KubernetesConfig, 'kubeconfig' | 'context' | 'requestTimeoutMs'>) {}

  readonly get = (): KubeClient => {
    if (!this.client) {
      const { kubeconfig, context, requestTimeoutMs } = this.settings;
      this.conn = loadKubeConnection(kubeconfig ? { kubeconfig, ...(context ? { context } : {}) } : {});
      this.client = new KubeClient(this.conn, { requestTimeoutMs });
    }
    return this.client;
  };

  /** Where the client points, for the start-up log line (never credentials). */
  describe(): { api: string; credentials: string } | undefined {
    return this.conn ? { api: this.conn.server, credentials: this.conn.describe } : undefined;
  }

  close(): void {
    this.client?.close();
  }
}

export interface KubernetesAccess {
  authenticator: KubernetesAuthenticator;
  authorizer: KubernetesAuthorizer;
  /** Which Gateway may use which Secret: the watch feeds it, the authorizer asks it. */
  gatewayReferences: GatewayReferences;
  /** Ends the review caches' timers. */
  stop(): void;
}

/** ServiceAccount identity (TokenReview, SPIFFE) and RBAC policy (SubjectAccessReview). */
export function kubernetesAccess(
  settings: KubernetesConfig,
  deps: { client: () => KubeClient; logger: Logger; rules: PolicyRule[]; trustLoopback: boolean; metrics?: KubernetesMetrics },
): KubernetesAccess {
  const { client, logger, metrics } = deps;
  const tokens = new TokenReviewer({
    client,
    audiences: settings.authentication.audiences,
    ttlMs: settings.authentication.tokenCacheMs,
    staleIfErrorMs: settings.authorization.staleIfErrorMs,
    onReview: (result) => metrics?.reviews.inc({ review: 'token', result }),
  });
  const access = new AccessReviewer({
    client,
    logger: () => logger,
    allowTtlMs: settings.authorization.allowCacheMs,
    denyTtlMs: settings.authorization.denyCacheMs,
    staleIfErrorMs: settings.authorization.staleIfErrorMs,
    onReview: (result) => metrics?.reviews.inc({ review: 'access', result }),
  });
  const identities = new ReviewedIdentities();
  const authenticator = new KubernetesAuthenticator({
    tokens,
    spiffeTrustDomain: settings.authentication.spiffeTrustDomain,
    identities,
    reviewIntervalMs: settings.authentication.reviewIntervalMs,
    logger: () => logger,
    trust: { trustLoopback: deps.trustLoopback },
    ...(settings.sidecar ? { sidecarTokenFile: settings.sidecar.tokenFile } : {}),
  });
  const gatewayReferences = new GatewayReferences();
  const gatewayApi =
    settings.gatewayApi || settings.clusterTrustBundles
      ? new GatewayApiAuthorizer(
          gatewayReferences,
          new PodGateways({
            client,
            logger: () => logger,
            ttlMs: settings.authorization.allowCacheMs,
            staleIfErrorMs: settings.authorization.staleIfErrorMs,
          }),
          access,
          identities,
        )
      : undefined;
  const authorizer = new KubernetesAuthorizer(access, new LocalPolicy(deps.rules), identities, gatewayApi, settings.sidecar?.namespace);
  return { authenticator, authorizer, gatewayReferences, stop: () => access.stop() };
}

/** The watch of Secrets and ConfigMaps, with its Events and the fleet's delivery reports. */
export class KubernetesWatch {
  readonly name = 'kubernetes';
  private source: KubernetesSource | undefined;
  private fleet: FleetReports | undefined;
  private holds: BundleHolds | undefined;

  constructor(
    private readonly settings: KubernetesConfig,
    private readonly deps: {
      client: SharedKubeClient;
      store: SecretStore;
      logger: Logger;
      metrics: KubernetesMetrics;
      /** This replica's delivery rows, shared with the fleet. */
      deliveryRows: () => NodeDelivery[];
      /** Shared with the authorizer (kubernetesAccess). */
      gatewayReferences: GatewayReferences;
      /** Whether every subscriber of a name (fleet-wide) ACKed a version: releases CA bundle holds. */
      acknowledged?: (name: string, version: string) => Promise<boolean>;
    },
  ) {}

  async start(): Promise<void> {
    const { settings, deps } = this;
    const client = deps.client.get();
    const metrics = deps.metrics;
    if (settings.caBundleHold.length > 0) {
      this.holds = new BundleHolds({
        store: deps.store,
        rules: settings.caBundleHold,
        acknowledged: deps.acknowledged ?? (() => Promise.resolve(false)),
        logger: deps.logger.child({ part: 'ca-bundle-hold' }),
      });
      this.holds.start();
    }
    this.source = new KubernetesSource({
      client,
      store: this.holds ?? deps.store,
      config: settings,
      logger: deps.logger.child({ source: 'kubernetes' }),
      ...(settings.events.enabled
        ? {
            events: new RejectionEvents(client, deps.logger, settings.events.reportingInstance, (outcome) =>
              metrics.events.inc({ outcome }),
            ),
          }
        : {}),
      onWatchRestart: (resource, reason) => metrics.watchRestarts.inc({ resource, reason }),
      extensions: this.extensions(),
      ...(settings.sidecar ? { sidecarNamespace: settings.sidecar.namespace } : {}),
    });
    deps.logger.info(
      { ...deps.client.describe(), namespaces: settings.namespaces.length > 0 ? settings.namespaces : 'all' },
      'watching Kubernetes Secrets and ConfigMaps',
    );
    this.source.start();
    const delivery = settings.deliveryStatus;
    if (delivery.enabled && delivery.namespace) {
      this.fleet = new FleetReports({
        client,
        namespace: delivery.namespace,
        replica: delivery.replica,
        publishMs: delivery.publishMs,
        local: deps.deliveryRows,
        logger: deps.logger.child({ part: 'delivery-status' }),
      });
      this.fleet.start();
    }
  }

  /** Gateway API and ClusterTrustBundle watches, when the config asks for them. */
  private extensions(): Array<(ctx: SourceContext) => SourceExtension> {
    const out: Array<(ctx: SourceContext) => SourceExtension> = [];
    if (this.settings.gatewayApi) out.push((ctx) => new GatewayApiSource(ctx, this.deps.gatewayReferences));
    if (this.settings.clusterTrustBundles) out.push((ctx) => new ClusterTrustBundleSource(ctx));
    return out;
  }

  async stop(): Promise<void> {
    this.holds?.stop();
    await this.fleet?.stop();
    await this.source?.stop();
  }

  /** Whether every list/watch is connected (the api_reachable gauge). */
  reachable(): boolean {
    return this.source?.reachable() ?? false;
  }

  readiness(): Readiness {
    return this.source?.readiness() ?? { ready: false, reasons: ['not started'] };
  }

  /** CA bundles served as a union for now (kubernetes.caBundleHold). */
  heldBundles(): HeldBundle[] {
    return this.holds?.held() ?? [];
  }

  /** Every replica's delivery rows; undefined when fleet reports are off. */
  fleetDeliveries(): Promise<NodeDelivery[]> | undefined {
    return this.fleet?.fleet();
  }
}
