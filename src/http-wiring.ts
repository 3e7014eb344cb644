import { VERSION } from './observability/version.js';
import type { HttpConfig, ServerConfig } from './config/server-config.js';
import type { NodeDelivery } from './delivery/delivery-report.js';
import type { CaRotationStatus } from './issuance/ca-rotation/ca-rotation.js';
import type { HeldBundle } from './sources/kubernetes/bundle-holds.js';
import type { CertificateReport } from './issuance/engine.js';
import { deliveryRoute } from './delivery/delivery-route.js';
import { secretRoute } from './delivery/secret-route.js';
import type { HttpServerOptions, Readiness, RouteHandler } from './observability/http-server.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import { renderStatusPage, STATUS_PAGE_CSP } from './delivery/status-page.js';
import type { StreamRegistry } from './sds/stream-status.js';
import { RejectionLog } from './store/rejection-log.js';
import type { Rejection, SecretStore } from './store/secret-store.js';

export interface HttpWiring {
  config: ServerConfig;
  http: HttpConfig;
  store: SecretStore;
  registry: StreamRegistry;
  rejections: RejectionLog;
  metrics: Metrics;
  logger: Logger;
  /** A CA key pair that is never served. */
  withheld: (name: string) => boolean;
  replica: string;
  /** Delivery rows of the fleet (or this replica when the fleet cannot be read). */
  fleetRows: () => Promise<{ nodes: NodeDelivery[]; fleet: boolean; error?: string }>;
  /** /readyz (and gRPC health): every declared secret loaded, every part ready. */
  readiness: () => Readiness;
  /** Issued certificates with their status (the page lists them). */
  certificates: () => CertificateReport[];
  /** CA issuers' staged rotations (/status `caRotations`, the page). */
  caRotations?: () => CaRotationStatus[];
  /** CA bundles served as a union for now (/status `caBundleHolds`). */
  bundleHolds?: () => HeldBundle[];
  /** Routes by path prefix (the ACME HTTP-01 solver, the issuance controls). */
  routes: Map<string, RouteHandler>;
}

/** A part main.ts starts after the listeners are bound and stops on shutdown. */
export interface ServerPart {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Contributes to /readyz, its reasons prefixed with the part's name. */
  readiness(): Readiness;
}

/** /readyz's line for a declared secret that is not served, with the cause when known. */
export function notLoaded(name: string, rejection: Rejection | undefined): string {
  if (!rejection) return `secret ${name} not loaded (no valid content yet; see the log for the source's error)`;
  return `secret ${name} not loaded: update rejected (${rejection.code}) at ${rejection.at.toISOString()}: ${rejection.message}`;
}

/** Ready when every declared secret is served and every part is ready; reasons name the cause. */
export function serverReadiness(
  config: ServerConfig,
  store: SecretStore,
  parts: readonly ServerPart[],
  rejections: RejectionLog,
): () => Readiness {
  return () => {
    const reasons = config.secrets.filter((s) => !store.get(s.name)).map((s) => notLoaded(s.name, rejections.get(s.name)));
    let ready = reasons.length === 0;
    for (const c of parts) {
      const r = c.readiness();
      ready &&= r.ready;
      reasons.push(...r.reasons.map((x) => `${c.name}: ${x}`));
    }
    return { ready, reasons };
  };
}

/** The HTTP port's wiring: readiness, status, delivery, the page, from the parts main.ts built. */
export function httpOptions(w: HttpWiring): HttpServerOptions {
  const { config, store, registry, withheld, rejections } = w;
  const rejectionOf = (name: string) => {
    const r = rejections.get(name);
    return r ? RejectionLog.toJSON(r) : null;
  };
  const missing = () => config.secrets.filter((s) => !store.get(s.name));
  return {
    address: w.http.address,
    allowedHosts: w.http.allowedHosts,
    details: w.http.details,
    logger: w.logger,
    metrics: w.metrics,
    readiness: w.readiness,
    status: () => {
      const subscribers = registry.subscribers();
      return {
        secrets: store.all().map((s) => ({
          name: s.name,
          kind: s.kind,
          version: s.version,
          origin: `${s.origin.source}:${s.origin.ref}`,
          subject: s.facts.subject,
          notAfter: s.facts.notAfter.toISOString(),
          warnings: s.warnings,
          lastRejection: rejectionOf(s.name),
          ...(withheld(s.name) ? { withheld: `a CA key pair: never served; ${s.name}-cacert is` } : {}),
          watchers: subscribers.get(s.name) ?? 0,
        })),
        // Declared but not served: with the cause when one is known.
        notLoaded: missing().map((s) => ({ name: s.name, lastRejection: rejectionOf(s.name) })),
        streams: registry.list().map((s) => s.toJSON((n) => store.get(n)?.version)),
        caRotations: w.caRotations?.() ?? [],
        caBundleHolds: w.bundleHolds?.() ?? [],
      };
    },
    statusSummary: () => ({
      secrets: store.size,
      secretsWithWarnings: store.all().filter((s) => s.warnings.length > 0 && !withheld(s.name)).length,
      streams: registry.size,
    }),
    page: { contentSecurityPolicy: STATUS_PAGE_CSP, html: () => statusPageHtml(w, rejectionOf, missing) },
    detailRoutes: new Map<string, RouteHandler>([
      ['/delivery', deliveryRoute(w.fleetRows)],
      ['/secrets/', secretRoute((n) => store.get(n), rejectionOf)],
    ]),
    prefixRoutes: w.routes,
  };
}

/** The HTML status page: secrets, declared ones not loaded, gateways, issued certificates. */
async function statusPageHtml(
  w: HttpWiring,
  rejectionOf: (name: string) => ReturnType<typeof RejectionLog.toJSON> | null,
  missing: () => ServerConfig['secrets'],
): Promise<string> {
  const { store, rejections } = w;
  const rows = await w.fleetRows();
  return renderStatusPage({
    version: VERSION,
    replica: w.replica,
    generatedAt: new Date(),
    fleet: rows.fleet,
    secrets: store.all().map((s) => {
      const r = rejectionOf(s.name);
      return {
        name: s.name,
        kind: s.kind,
        version: s.version,
        origin: `${s.origin.source}:${s.origin.ref}`,
        subject: s.facts.subject,
        notAfter: s.facts.notAfter,
        warnings: s.warnings,
        ...(r ? { rejection: r } : {}),
      };
    }),
    notLoaded: missing().map((s) => ({
      name: s.name,
      cause: notLoaded(s.name, rejections.get(s.name)).replace(/^secret \S+ not loaded:? ?/, ''),
    })),
    gateways: rows.nodes,
    caRotations: w.caRotations?.() ?? [],
    certificates: w.certificates().map((c) => {
      const ready = c.status?.conditions.find((x) => x.type === 'Ready');
      return {
        id: `${c.namespace}/${c.name}`,
        secretName: c.secretName,
        ready: ready?.status ?? 'Unknown',
        reason: ready?.reason ?? 'Pending',
        message: ready?.message ?? '',
        ...(c.status?.notAfter ? { notAfter: c.status.notAfter } : {}),
        ...(c.status?.renewalTime ? { renewalTime: c.status.renewalTime } : {}),
      };
    }),
  });
}
