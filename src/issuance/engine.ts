// The issuance engine as a server component: one CertificateController per Certificate,
// the issuer backends they share, the HTTP-01 responder and the renew/status controls.
// It never touches the secret store: issued Secrets are files it declares through
// fileSecrets(), which the file source watches and serves like any other file, so a
// rotation reaches Envoy by the same path whoever wrote the files.

import type { ComponentContext, ServerComponent } from '../component.js';
import type { FileSecretConfig, ServerConfig } from '../config/server-config.js';
import type { Readiness, RouteHandler } from '../observability/http-server.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { AcmeIssuer } from './acme/acme-issuer.js';
import { HTTP01_PREFIX, Http01Responder } from './acme/http01-solver.js';
import { CertificateController, type Outcome } from './certificate-controller.js';
import { getCondition, type CertificateStatus } from './certificate-status.js';
import { CONTROL_PREFIX, controlRoutes } from './control-routes.js';
import { FilePersister } from './file-persister.js';
import { parseIssuanceConfig, type IssuanceConfig } from './issuance-config.js';
import type { StepHook } from './issuance-hooks.js';
import { CaIssuer } from './issuers/ca-issuer.js';
import type { CertificateIssuer } from './issuers/issuer.js';
import { SelfSignedIssuer } from './issuers/self-signed-issuer.js';
import { IssuanceSlots } from './issuance-slots.js';
import type { CertificatePersister } from './persister.js';
import { caSecretName, issuerId, type CertificateResource, type IssuerResource } from './resources.js';

export interface IssuanceEngineOptions {
  config: IssuanceConfig;
  dataDir: string;
  /** Default: files under <dataDir>/issuance. */
  persister?: CertificatePersister;
  /** The clock the policies see. Default: the system clock. */
  now?: () => Date;
  hook?: StepHook;
  /** Default: the server's logger (given at start). */
  logger?: Logger;
}

/** One certificate as status() reports it. */
export interface CertificateReport {
  namespace: string;
  name: string;
  secretName: string;
  issuerRef: { name: string; kind: string };
  status: CertificateStatus | undefined;
}

// Ready=False reasons that mean there is no usable certificate to serve at all.
const NOTHING_SERVED = new Set(['DoesNotExist', 'MissingData', 'InvalidValue', 'InvalidKeyPair', 'Expired']);

export class IssuanceEngine implements ServerComponent {
  readonly name = 'issuance';
  readonly http01 = new Http01Responder();
  private readonly persister: CertificatePersister;
  private readonly abort = new AbortController();
  private readonly controllers = new Map<string, CertificateController>();
  private readonly statuses = new Map<string, CertificateStatus>();
  private readonly issuers = new Map<string, CertificateIssuer>();
  private logger: Logger;
  private started = false;

  constructor(private readonly opts: IssuanceEngineOptions) {
    this.persister = opts.persister ?? new FilePersister(opts.dataDir);
    this.logger = opts.logger ?? silentLogger();
  }

  fileSecrets(): FileSecretConfig[] {
    const files = this.persister.secretFiles;
    if (!files) return [];
    const out: FileSecretConfig[] = [];
    for (const cert of this.opts.config.certificates) {
      const f = files.call(this.persister, cert.namespace, cert.spec.secretName);
      out.push({ name: cert.spec.secretName, kind: 'tls_certificate', certificateChainFile: f.certificateChainFile, privateKeyFile: f.privateKeyFile });
      // A `-cacert` validation context exists where ca.crt holds a CA: a self-signed CA,
      // or anything a CA issuer signs. ACME does not name its root.
      const issuer = this.issuerOf(cert);
      if (issuer.spec.type === 'ca' || (issuer.spec.type === 'selfSigned' && cert.spec.isCA)) {
        out.push({ name: caSecretName(cert.spec.secretName), kind: 'validation_context', trustedCaFile: f.caFile });
      }
    }
    return out;
  }

  httpRoutes(): Map<string, RouteHandler> {
    return new Map<string, RouteHandler>([
      [HTTP01_PREFIX, this.http01.handle],
      [
        CONTROL_PREFIX,
        controlRoutes({
          find: (ref) => this.find(ref),
          renew: (id) => this.renew(id),
          status: () => ({ certificates: this.status() }),
        }),
      ],
    ]);
  }

  async start(ctx?: ComponentContext): Promise<void> {
    if (this.started) throw new Error('the issuance engine is started once');
    this.started = true;
    if (ctx && !this.opts.logger) this.logger = ctx.logger;
    if (ctx) {
      ctx.metrics.addCollectedGauge('envoy_sds_certificates', 'Certificates managed by the issuance engine.', () => this.controllers.size);
      ctx.metrics.addCollectedGauge('envoy_sds_certificates_not_ready', 'Issued certificates whose Ready condition is not True.', () => this.status().filter((c) => getCondition(c.status ?? { conditions: [] }, 'Ready')?.status !== 'True').length);
      ctx.metrics.addCollectedGauge('envoy_sds_certificates_failing', 'Issued certificates whose last issuance attempt failed.', () => this.status().filter((c) => (c.status?.failedIssuanceAttempts ?? 0) > 0).length);
    }
    const { settings } = this.opts.config;
    const slots = new IssuanceSlots(settings.maxConcurrentIssuances);
    for (const cert of this.opts.config.certificates) {
      const resource = this.issuerOf(cert);
      const controller = new CertificateController(cert, resource, this.backendFor(resource), {
        persister: this.persister,
        settings,
        now: this.opts.now ?? (() => new Date()),
        logger: this.logger.child({ certificate: cert.id }),
        hook: this.opts.hook,
        signal: this.abort.signal,
        onStatus: (c, status) => this.statuses.set(c.id, status),
        onIssued: (c) => this.onIssued(c),
        slots,
      });
      this.controllers.set(cert.id, controller);
    }
    for (const controller of this.controllers.values()) controller.trigger();
    this.logger.info({ certificates: this.controllers.size, issuers: this.opts.config.issuers.size }, 'issuance engine started');
  }

  /** Aborts work in flight (persisted state stays for the next start) and waits for it to end. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('issuance engine stopping'));
    for (const c of this.controllers.values()) c.stop();
    await Promise.all([...this.controllers.values()].map((c) => c.idle()));
  }

  readiness(): Readiness {
    let ready = true;
    const reasons: string[] = [];
    for (const [id, controller] of this.controllers) {
      const status = this.statuses.get(id);
      const condition = status && getCondition(status, 'Ready');
      if (!condition) {
        ready = false;
        reasons.push(`certificate ${id}: not evaluated yet`);
        continue;
      }
      if (condition.status === 'True') continue;
      reasons.push(`certificate ${id}: Ready=False (${condition.reason}): ${condition.message}`);
      // Startup waits for each certificate's first outcome; after that one failing
      // certificate is reported but does not take the whole server out of service.
      const settled = condition.reason === 'Denied' || (status.failedIssuanceAttempts ?? 0) > 0 || isSettled(controller.lastOutcome);
      if (NOTHING_SERVED.has(condition.reason) && !settled) ready = false;
    }
    return { ready, reasons };
  }

  status(): CertificateReport[] {
    return this.opts.config.certificates.map((c) => ({
      namespace: c.namespace,
      name: c.name,
      secretName: c.spec.secretName,
      issuerRef: c.spec.issuerRef,
      status: this.statuses.get(c.id),
    }));
  }

  /** Certificate ids for `namespace/name`, or for a bare `name` in any namespace. */
  find(ref: string): string[] {
    if (ref.includes('/')) return this.controllers.has(ref) ? [ref] : [];
    return [...this.controllers.values()].filter((c) => c.certificate.name === ref).map((c) => c.certificate.id);
  }

  /** Forces re-issuance of one certificate (`envoy-sds renew`); resolves with the request time. */
  renew(id: string): Promise<string> {
    const controller = this.controllers.get(id);
    if (!controller) return Promise.reject(new Error(`no Certificate ${id}`));
    return controller.requestRenewal();
  }

  /** Resolves once no controller is running (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.controllers.values()].map((c) => c.idle()));
  }

  private onIssued(issued: CertificateResource): void {
    // A CA Certificate just issued may be what another certificate's issuer waits for.
    for (const c of this.controllers.values()) {
      if (c.certificate.id !== issued.id && c.lastOutcome === 'waiting-for-issuer') c.trigger();
    }
  }

  private issuerOf(cert: CertificateResource): IssuerResource {
    const ref = cert.spec.issuerRef;
    const issuer = this.opts.config.issuers.get(issuerId(ref.kind, ref.name, cert.namespace));
    if (!issuer) throw new Error(`unresolved issuerRef of ${cert.id}`); // parseIssuanceConfig checked it
    return issuer;
  }

  private backendFor(resource: IssuerResource): CertificateIssuer {
    const id = issuerId(resource.kind, resource.name, resource.namespace);
    let backend = this.issuers.get(id);
    if (backend) return backend;
    switch (resource.spec.type) {
      case 'selfSigned':
        backend = new SelfSignedIssuer();
        break;
      case 'ca':
        backend = new CaIssuer(resource as IssuerResource & { spec: { type: 'ca' } }, this.persister);
        break;
      case 'acme':
        backend = new AcmeIssuer(resource as IssuerResource & { spec: { type: 'acme' } }, {
          persister: this.persister,
          http01: this.http01,
          poll: this.opts.config.settings.acme,
          logger: this.logger.child({ issuer: id }),
          hook: this.opts.hook,
        });
        break;
    }
    this.issuers.set(id, backend);
    return backend;
  }
}

function isSettled(outcome: Outcome | undefined): boolean {
  return outcome === 'failed' || outcome === 'denied' || outcome === 'backing-off';
}

/** The component for a server config with an `issuance:` section (see src/components.ts). */
export function createIssuanceEngine(config: ServerConfig): IssuanceEngine {
  const parsed = parseIssuanceConfig(config.issuance, { baseDir: config.configDir, reservedNames: config.secrets.map((s) => s.name) });
  return new IssuanceEngine({ config: parsed, dataDir: config.dataDir });
}
