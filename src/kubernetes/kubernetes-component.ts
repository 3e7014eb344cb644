import { AccessReviewer } from '../authz/kubernetes/access-reviewer.js';
import { KubernetesAuthenticator } from '../authz/kubernetes/kubernetes-authenticator.js';
import { GatewayApiAuthorizer } from '../authz/kubernetes/gateway-api-authorizer.js';
import { KubernetesAuthorizer } from '../authz/kubernetes/kubernetes-authorizer.js';
import { PodGateways } from '../authz/kubernetes/pod-gateways.js';
import { ReviewedIdentities } from '../authz/kubernetes/reviewed-identities.js';
import { TokenReviewer } from '../authz/kubernetes/token-reviewer.js';
import { LocalPolicy } from '../authz/local-policy.js';
import type { Authenticator, Authorizer } from '../authz/authorizer.js';
import type { ComponentContext, ServerComponent } from '../component.js';
import type { ServerConfig } from '../config/server-config.js';
import type { Readiness } from '../observability/http-server.js';
import type { Logger } from '../observability/logger.js';
import type { NodeDelivery } from '../delivery/delivery-report.js';
import { FleetReports } from '../delivery/fleet-reports.js';
import { ClusterTrustBundleSource } from '../sources/kubernetes/cluster-trust-bundle-source.js';
import { GatewayApiSource } from '../sources/kubernetes/gateway-api-source.js';
import { GatewayReferences } from '../sources/kubernetes/gateway-references.js';
import { KubernetesSource, type SourceContext, type SourceExtension } from '../sources/kubernetes/kubernetes-source.js';
import { RejectionEvents } from '../sources/kubernetes/rejection-events.js';
import { KubeClient } from './kube-client.js';
import { loadKubeConnection } from './kube-connection.js';
import { parseKubernetesConfig, type KubernetesConfig } from './kubernetes-config.js';
import { KubernetesMetrics } from './kubernetes-metrics.js';

/** The `kubernetes:` section, when present: throws a ConfigError when it is wrong. */
export function kubernetesComponent(config: ServerConfig): KubernetesComponent {
  return new KubernetesComponent(parseKubernetesConfig(config.kubernetes), config);
}

/**
 * Kubernetes as a source (Secrets and ConfigMaps -> store) and as the authority on who
 * may read them (TokenReview, SubjectAccessReview). The authenticator and authorizer
 * exist from construction (the server asks for them before start) and reach the API
 * server only once start() has connected.
 */
export class KubernetesComponent implements ServerComponent {
  readonly name = 'kubernetes';
  private client: KubeClient | undefined;
  private source: KubernetesSource | undefined;
  private fleet: FleetReports | undefined;
  private logger: Logger | undefined;
  private metrics: KubernetesMetrics | undefined;
  private readonly access: AccessReviewer;
  private readonly authn: KubernetesAuthenticator;
  private readonly authz: KubernetesAuthorizer;
  private readonly gatewayReferences = new GatewayReferences();

  constructor(
    readonly config: KubernetesConfig,
    serverConfig: Pick<ServerConfig, 'authorization'> & Partial<Pick<ServerConfig, 'trustLoopback'>>,
  ) {
    const client = (): KubeClient => {
      if (!this.client) throw new Error('the Kubernetes component has not started');
      return this.client;
    };
    const tokens = new TokenReviewer({
      client,
      audiences: config.authentication.audiences,
      ttlMs: config.authentication.tokenCacheMs,
      staleIfErrorMs: config.authorization.staleIfErrorMs,
      onReview: (result) => this.metrics?.reviews.inc({ review: 'token', result }),
    });
    this.access = new AccessReviewer({
      client,
      logger: () => this.logger!,
      allowTtlMs: config.authorization.allowCacheMs,
      denyTtlMs: config.authorization.denyCacheMs,
      staleIfErrorMs: config.authorization.staleIfErrorMs,
      onReview: (result) => this.metrics?.reviews.inc({ review: 'access', result }),
    });
    const identities = new ReviewedIdentities();
    this.authn = new KubernetesAuthenticator({
      tokens,
      spiffeTrustDomain: config.authentication.spiffeTrustDomain,
      identities,
      reviewIntervalMs: config.authentication.reviewIntervalMs,
      logger: () => this.logger!,
      trust: { trustLoopback: serverConfig.trustLoopback ?? false },
    });
    const gatewayApi =
      config.gatewayApi || config.clusterTrustBundles
        ? new GatewayApiAuthorizer(
            this.gatewayReferences,
            new PodGateways({ client, logger: () => this.logger!, ttlMs: config.authorization.allowCacheMs, staleIfErrorMs: config.authorization.staleIfErrorMs }),
            this.access,
            identities,
          )
        : undefined;
    this.authz = new KubernetesAuthorizer(this.access, new LocalPolicy(serverConfig.authorization.rules), identities, gatewayApi);
  }

  async start(ctx: ComponentContext): Promise<void> {
    this.logger = ctx.logger;
    const conn = loadKubeConnection(this.config.kubeconfig ? { kubeconfig: this.config.kubeconfig, ...(this.config.context ? { context: this.config.context } : {}) } : {});
    this.client = new KubeClient(conn, { requestTimeoutMs: this.config.requestTimeoutMs });
    this.metrics = new KubernetesMetrics(ctx.metrics, () => this.source?.reachable() ?? false);
    const metrics = this.metrics;
    this.source = new KubernetesSource({
      client: this.client,
      store: ctx.store,
      config: this.config,
      logger: ctx.logger.child({ source: 'kubernetes' }),
      ...(this.config.events.enabled
        ? { events: new RejectionEvents(this.client, ctx.logger, this.config.events.reportingInstance, (outcome) => metrics.events.inc({ outcome })) }
        : {}),
      onWatchRestart: (resource, reason) => metrics.watchRestarts.inc({ resource, reason }),
      extensions: this.extensions(),
    });
    ctx.logger.info(
      { api: conn.server, credentials: conn.describe, namespaces: this.config.namespaces.length > 0 ? this.config.namespaces : 'all' },
      'watching Kubernetes Secrets and ConfigMaps',
    );
    this.source.start();
    const delivery = this.config.deliveryStatus;
    if (delivery.enabled && delivery.namespace) {
      this.fleet = new FleetReports({
        client: this.client,
        namespace: delivery.namespace,
        replica: delivery.replica,
        publishMs: delivery.publishMs,
        local: ctx.deliveryRows,
        logger: ctx.logger.child({ part: 'delivery-status' }),
      });
      this.fleet.start();
    }
  }

  private extensions(): Array<(ctx: SourceContext) => SourceExtension> {
    const out: Array<(ctx: SourceContext) => SourceExtension> = [];
    if (this.config.gatewayApi) out.push((ctx) => new GatewayApiSource(ctx, this.gatewayReferences));
    if (this.config.clusterTrustBundles) out.push((ctx) => new ClusterTrustBundleSource(ctx));
    return out;
  }

  async stop(): Promise<void> {
    await this.fleet?.stop();
    this.access.stop();
    await this.source?.stop();
    this.client?.close();
  }

  /** Resolves once every informer has listed once (tests, and tools that want to wait). */
  async whenSynced(): Promise<void> {
    await this.source?.whenSynced();
  }

  readiness(): Readiness {
    return this.source?.readiness() ?? { ready: false, reasons: ['not started'] };
  }

  authenticator(): Authenticator {
    return this.authn;
  }

  authorizer(): Authorizer {
    return this.authz;
  }

  fleetDeliveries(): Promise<NodeDelivery[]> | undefined {
    return this.fleet?.fleet();
  }
}
