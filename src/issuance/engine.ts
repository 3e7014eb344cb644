// The issuance engine: one CertificateController per Certificate,
// the issuer backends they share, the HTTP-01 responder and the renew/status controls.
// It never touches the secret store: in local mode issued Secrets are files it declares
// through fileSecrets(), which the file source watches and serves like any other file; in
// Kubernetes mode they are Secrets (kubernetes-secret-persister.ts) that the Kubernetes
// source watches. Either way a rotation reaches Envoy by the same path whoever wrote it.
// With a LeaderLease only the replica holding it runs the controllers. Resources come
// from the config, or from custom resources (custom-resource-source.ts) that may change
// while it runs: then only the controllers whose Certificate or issuer changed restart.

import type { FileSecretConfig } from '../config/server-config.js';
import type { Readiness, RouteHandler } from '../observability/http-server.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { AcmeIssuer } from './acme/acme-issuer.js';
import { HTTP01_PREFIX, Http01Responder } from './acme/http01-solver.js';
import { CertificateController, type Outcome } from './certificate-controller.js';
import { getCondition, type CertificateStatus } from './certificate-status.js';
import { caKeyNames } from './ca-key-names.js';
import { CONTROL_PREFIX, controlRoutes } from './control-routes.js';
import { FilePersister } from './persisters/file-persister.js';
import type { IssuanceConfig } from './issuance-config.js';
import type { StepHook } from './issuance-hooks.js';
import { CaIssuer } from './issuers/ca-issuer.js';
import { InvalidIssuer, type CertificateIssuer } from './issuers/issuer.js';
import { issuerStatusFrom, type IssuerReadiness, type IssuerStatus } from './issuer-status.js';
import { SelfSignedIssuer } from './issuers/self-signed-issuer.js';
import { IssuanceSlots } from './issuance-slots.js';
import type { LeaderLease } from '../kubernetes/leader-lease.js';
import type { CertificatePersister } from './persisters/persister.js';
import { CaRotations, type RotationContext } from './ca-rotation/ca-rotations.js';
import type { CaRotationStatus } from './ca-rotation/ca-rotation.js';
import { LockedPersister } from './ca-rotation/locked-persister.js';
import { successorFromCertificate, successorLike } from './ca-rotation/new-ca.js';
import { RotatingIssuer } from './ca-rotation/rotating-issuer.js';
import { ROTATION_PATH, rotationRoute } from './ca-rotation/rotation-route.js';
import { caSecretName, issuerId, type CertificateResource, type IssuerResource } from './resources.js';

/** `renew` asked of a replica that does not issue: the message names the one that does. */
export class NotLeaderError extends Error {
  readonly code = 'NOT_LEADER';
  constructor(
    readonly certificate: string,
    readonly leader: string | undefined,
  ) {
    super(
      `this replica does not issue ${certificate}: ${leader ? `the leader is ${leader}; ask it` : 'no replica leads right now; try again shortly'}`,
    );
    this.name = 'NotLeaderError';
  }
}

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
  /**
   * Only the holder of this Lease issues (its callbacks are the engine's; see
   * issuance-wiring.ts). Default: this engine always issues.
   */
  leaderElection?: (callbacks: {
    onStartedLeading: () => Promise<void>;
    onStoppedLeading: () => Promise<void>;
    logger: Logger;
  }) => LeaderLease;
  /**
   * Where the resources come from when not (only) the config: a source started at start()
   * that hands every new set to `apply` (custom resources; see custom-resource-source.ts).
   */
  resourceSource?: (
    apply: (resources: Pick<IssuanceConfig, 'issuers' | 'certificates'>) => Promise<void>,
    logger: Logger,
    renewalRequested: (id: string) => void,
  ) => { start(): void | Promise<void>; stop(): Promise<void> };
  /**
   * The SDS name a persisted Secret is served under: its secretName (files, the default)
   * or `kubernetes://<namespace>/<secretName>` (Kubernetes Secrets).
   */
  servedName?: (namespace: string, secretName: string) => string;
  /** Whether loopback callers may use the HTTP controls (ServerConfig.trustLoopback). Default true. */
  trustLoopback?: boolean;
}

/** One Issuer or ClusterIssuer as issuerStatus() reports it. */
export interface IssuerReport {
  kind: string;
  name: string;
  namespace?: string;
  status: IssuerStatus | undefined;
  /** A `ca` issuer's staged rotation, the one under way or the last one. */
  caRotation?: CaRotationStatus;
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

/** What the server hands the engine at start: its logger and the metrics registry. */
export interface EngineStartContext {
  logger: Logger;
  metrics: Metrics;
  /** What CA rotations read: the store's content and the fleet's delivery rows. */
  rotations?: RotationContext;
}

export class IssuanceEngine {
  readonly name = 'issuance';
  readonly http01 = new Http01Responder();
  private readonly persister: LockedPersister;
  readonly rotations: CaRotations;
  private config: IssuanceConfig;
  /** One per controller: a controller is stopped alone when its resources change. */
  private readonly aborts = new Map<string, AbortController>();
  /** What each running controller was built from (its Certificate and issuer, as JSON). */
  private readonly builtFrom = new Map<string, string>();
  private readonly slots: IssuanceSlots;
  private leading = false;
  /** Starts, stops and resource changes, one at a time. */
  private serial: Promise<void> = Promise.resolve();
  private leader: LeaderLease | undefined;
  private source: { start(): void | Promise<void>; stop(): Promise<void> } | undefined;
  /** Aborted by stop(): no controller starts after it. */
  private readonly abort = new AbortController();
  private readonly controllers = new Map<string, CertificateController>();
  private readonly statuses = new Map<string, CertificateStatus>();
  private readonly issuers = new Map<string, CertificateIssuer>();
  private readonly issuerStatuses = new Map<string, IssuerStatus>();
  /** One readiness check at a time per issuer; later ones queue behind it. */
  private readonly issuerChecks = new Map<string, Promise<void>>();
  private logger: Logger;
  private started = false;
  private caKeys: { from: IssuanceConfig; names: ReadonlySet<string> } | undefined;

  constructor(private readonly opts: IssuanceEngineOptions) {
    this.persister = new LockedPersister(opts.persister ?? new FilePersister(opts.dataDir));
    this.rotations = this.createRotations();
    this.config = opts.config;
    this.slots = new IssuanceSlots(opts.config.settings.maxConcurrentIssuances);
    this.logger = opts.logger ?? silentLogger();
  }

  caKeyNames(): ReadonlySet<string> {
    // Recomputed only when the resources change (custom resources may).
    if (this.caKeys?.from !== this.config) {
      this.caKeys = { from: this.config, names: caKeyNames(this.config, this.opts.servedName ?? ((_ns, secretName) => secretName)) };
    }
    return this.caKeys.names;
  }

  fileSecrets(): FileSecretConfig[] {
    const persister = this.persister;
    if (!persister.secretFiles) return [];
    const out: FileSecretConfig[] = [];
    const caKeys = this.caKeyNames();
    for (const cert of this.config.certificates) {
      const f = persister.secretFiles(cert.namespace, cert.spec.secretName);
      // A CA's key pair is not even loaded for serving (unless serveCAPrivateKey): the
      // issuer reads it from the persister, Envoy gets the -cacert bundle below.
      if (!caKeys.has(cert.spec.secretName)) {
        out.push({
          name: cert.spec.secretName,
          kind: 'tls_certificate',
          certificateChainFile: f.certificateChainFile,
          privateKeyFile: f.privateKeyFile,
        });
      }
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
      // Before CONTROL_PREFIX: the first matching prefix answers.
      [
        ROTATION_PATH,
        rotationRoute(
          {
            find: (ref) => this.rotations.find(ref),
            begin: (id) => this.rotationCommand(id, () => this.rotations.begin(id)),
            abort: (id) => this.rotationCommand(id, () => this.rotations.abort(id)),
            statuses: () => this.rotations.statuses(),
          },
          { trustLoopback: this.opts.trustLoopback ?? true },
        ),
      ],
      [
        CONTROL_PREFIX,
        controlRoutes(
          {
            find: (ref) => this.find(ref),
            renew: (id) => this.renew(id),
            status: () => ({ certificates: this.status(), issuers: this.issuerStatus() }),
          },
          { trustLoopback: this.opts.trustLoopback ?? true },
        ),
      ],
    ]);
  }

  async start(ctx?: EngineStartContext): Promise<void> {
    if (this.started) throw new Error('the issuance engine is started once');
    this.started = true;
    if (ctx && !this.opts.logger) this.logger = ctx.logger;
    if (ctx) {
      ctx.metrics.addCollectedGauge('envoy_sds_certificates', 'Certificates managed by the issuance engine.', () => this.controllers.size);
      ctx.metrics.addCollectedGauge(
        'envoy_sds_certificates_not_ready',
        'Issued certificates whose Ready condition is not True.',
        () => this.status().filter((c) => getCondition(c.status ?? { conditions: [] }, 'Ready')?.status !== 'True').length,
      );
      // cert-manager's per-Certificate series (certmanager_certificate_ready_status, ..._renewal_timestamp_seconds).
      ctx.metrics.addLabelledCollectedGauge(
        'envoy_sds_issuance_certificate_ready_status',
        'The Ready condition of each Certificate: 1 for its current status, 0 for the others.',
        ['namespace', 'name', 'condition'] as const,
        () =>
          this.status().flatMap((c) => {
            const ready = getCondition(c.status ?? { conditions: [] }, 'Ready')?.status ?? 'Unknown';
            return (['True', 'False', 'Unknown'] as const).map((condition) => ({
              labels: { namespace: c.namespace, name: c.name, condition },
              value: ready === condition ? 1 : 0,
            }));
          }),
      );
      ctx.metrics.addLabelledCollectedGauge(
        'envoy_sds_issuance_certificate_renewal_timestamp_seconds',
        'When each Certificate is due for renewal (Unix seconds).',
        ['namespace', 'name'] as const,
        () =>
          this.status().flatMap((c) =>
            c.status?.renewalTime
              ? [{ labels: { namespace: c.namespace, name: c.name }, value: Math.floor(Date.parse(c.status.renewalTime) / 1000) }]
              : [],
          ),
      );
      if (ctx.rotations) this.rotations.attach(ctx.rotations, ctx.metrics);
      ctx.metrics.addCollectedGauge(
        'envoy_sds_certificates_failing',
        'Issued certificates whose last issuance attempt failed.',
        () => this.status().filter((c) => (c.status?.failedIssuanceAttempts ?? 0) > 0).length,
      );
    }
    if (this.opts.resourceSource) {
      this.source = this.opts.resourceSource(
        (r) => this.replaceResources(r),
        this.logger.child({ source: 'custom-resources' }),
        (id) => this.renewalRequested(id),
      );
      await this.source.start();
    }
    if (this.opts.leaderElection) {
      this.leader = this.opts.leaderElection({
        onStartedLeading: () => this.serialized(() => this.lead(true)),
        onStoppedLeading: () => this.serialized(() => this.lead(false)),
        logger: this.logger,
      });
      this.leader.start();
      this.logger.info(
        { certificates: this.config.certificates.length, identity: this.leader.identity },
        'issuance engine started; issuing while it holds the leader lease',
      );
      return;
    }
    await this.serialized(() => this.lead(true));
    this.logger.info({ certificates: this.controllers.size, issuers: this.config.issuers.size }, 'issuance engine started');
  }

  /** True when this replica issues: it holds the Lease, or there is no leader election. */
  get issuing(): boolean {
    return this.leading;
  }

  /**
   * New resources (custom resources changed): controllers whose Certificate or issuer
   * changed are restarted, removed ones stopped, new ones started; persisted state stays.
   */
  replaceResources(resources: Pick<IssuanceConfig, 'issuers' | 'certificates'>): Promise<void> {
    return this.serialized(async () => {
      const before = this.config.issuers;
      this.config = { ...this.config, issuers: resources.issuers, certificates: resources.certificates };
      if (this.leading) await this.reconcileControllers();
      for (const id of [...this.issuerStatuses.keys()]) if (!resources.issuers.has(id)) this.issuerStatuses.delete(id);
      // Only new or changed issuers are checked again: every status write comes back as a
      // watch event with the same resources.
      const changed = [...resources.issuers].filter(([id, r]) => JSON.stringify(before.get(id)) !== JSON.stringify(r)).map(([, r]) => r);
      if (this.leading && !this.abort.signal.aborted) for (const issuer of changed) void this.checkIssuer(issuer);
    });
  }

  private serialized(fn: () => Promise<void>): Promise<void> {
    const next = this.serial.then(fn);
    this.serial = next.catch(() => undefined);
    return next;
  }

  private async lead(leading: boolean): Promise<void> {
    this.leading = leading;
    // Rotations first: an issuer under rotation hands out its bundle from the first issuance on.
    if (leading && !this.abort.signal.aborted) await this.rotations.resume();
    else this.rotations.stop();
    await this.reconcileControllers();
    this.checkIssuers();
  }

  /** Every issuer's Ready condition, checked in the background (an ACME account registers). */
  private checkIssuers(): void {
    if (!this.leading || this.abort.signal.aborted) return;
    for (const issuer of this.config.issuers.values()) void this.checkIssuer(issuer);
  }

  private checkIssuer(resource: IssuerResource): Promise<void> {
    const id = issuerId(resource.kind, resource.name, resource.namespace);
    const previous = this.issuerChecks.get(id) ?? Promise.resolve();
    const next = previous.then(async () => {
      // An issuer removed or changed meanwhile: its new version has its own check.
      if (this.abort.signal.aborted || JSON.stringify(this.config.issuers.get(id)) !== JSON.stringify(resource)) return;
      await this.recordIssuer(resource, await this.backendFor(resource).readiness());
    });
    const settled = next.catch((err: unknown) =>
      this.logger.warn({ issuer: id, err: (err as Error).message }, 'issuer readiness check failed'),
    );
    this.issuerChecks.set(id, settled);
    void settled.finally(() => {
      if (this.issuerChecks.get(id) === settled) this.issuerChecks.delete(id);
    });
    return settled;
  }

  /** Records an issuer's readiness; a change is logged and written where issuers have a status. */
  private async recordIssuer(resource: IssuerResource, readiness: IssuerReadiness): Promise<void> {
    if (this.abort.signal.aborted) return; // stopping: a late check writes nothing
    const id = issuerId(resource.kind, resource.name, resource.namespace);
    const before = this.issuerStatuses.get(id);
    const status = issuerStatusFrom(before, readiness, this.opts.now?.() ?? new Date());
    this.issuerStatuses.set(id, status);
    if (JSON.stringify(before) === JSON.stringify(status)) return;
    const log = readiness.ready ? this.logger.info.bind(this.logger) : this.logger.warn.bind(this.logger);
    log({ issuer: id, ready: readiness.ready, reason: readiness.reason }, readiness.message);
    try {
      await this.persister.writeIssuerStatus?.(resource, status);
    } catch (err) {
      this.logger.warn({ issuer: id, err: (err as Error).message }, 'could not write the issuer status');
    }
  }

  /** Makes the running controllers those of the current resources (none unless leading). */
  private async reconcileControllers(): Promise<void> {
    const wanted = new Map<string, { cert: CertificateResource; issuer: IssuerResource; key: string }>();
    if (this.leading && !this.abort.signal.aborted) {
      for (const cert of this.config.certificates) {
        const issuer = this.issuerOf(cert);
        wanted.set(cert.id, { cert, issuer, key: JSON.stringify([cert, issuer]) });
      }
    }
    const stopping = [...this.controllers.keys()].filter((id) => wanted.get(id)?.key !== this.builtFrom.get(id));
    for (const id of stopping) {
      this.aborts.get(id)?.abort(new Error('issuance engine stopping'));
      this.controllers.get(id)?.stop();
    }
    await Promise.all(stopping.map((id) => this.controllers.get(id)?.idle() ?? Promise.resolve()));
    for (const id of stopping) {
      this.controllers.delete(id);
      this.aborts.delete(id);
      this.builtFrom.delete(id);
      if (!wanted.has(id)) this.statuses.delete(id);
    }
    // A changed issuer gets a new backend; one still in use by a running controller is kept.
    const inUse = new Set([...this.controllers.values()].map((c) => this.backendKey(c.certificate)));
    for (const key of [...this.issuers.keys()]) if (!inUse.has(key)) this.issuers.delete(key);
    const { settings } = this.config;
    const started: CertificateController[] = [];
    for (const [id, { cert, issuer, key }] of wanted) {
      if (this.controllers.has(id)) continue;
      const abort = new AbortController();
      const controller = new CertificateController(cert, issuer, this.backendFor(issuer), {
        persister: this.persister,
        settings,
        now: this.opts.now ?? (() => new Date()),
        logger: this.logger.child({ certificate: cert.id }),
        hook: this.opts.hook,
        signal: abort.signal,
        onStatus: (c, status) => this.statuses.set(c.id, status),
        onIssued: (c) => this.onIssued(c),
        onIssuerNotReady: (c, err) => void this.recordIssuer(this.issuerOf(c), { ready: false, reason: err.reason, message: err.message }),
        heldByRotation: (c) => this.rotations.heldBy(c),
        handOverCaKey: (c, issued) => this.rotations.handOver(c, issued),
        slots: this.slots,
      });
      this.controllers.set(id, controller);
      this.aborts.set(id, abort);
      this.builtFrom.set(id, key);
      started.push(controller);
    }
    for (const controller of started) controller.trigger();
  }

  private backendKey(cert: CertificateResource): string {
    const issuer = this.issuerOf(cert);
    return issuerId(issuer.kind, issuer.name, issuer.namespace);
  }

  /** Aborts work in flight (persisted state stays for the next start) and waits for it to end. */
  async stop(): Promise<void> {
    await this.source?.stop();
    // The leader's stop waits for onStoppedLeading (the controllers) before releasing.
    if (this.leader) await this.leader.stop();
    this.abort.abort(new Error('issuance engine stopping'));
    await this.serialized(() => this.lead(false));
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

  certificates(): CertificateReport[] {
    return this.status();
  }

  /** Every Issuer and ClusterIssuer with its Ready condition (undefined until first checked). */
  issuerStatus(): IssuerReport[] {
    return [...this.config.issuers.entries()].map(([id, r]) => ({
      kind: r.kind,
      name: r.name,
      ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
      status: this.issuerStatuses.get(id),
      ...(this.rotations.status(id) ? { caRotation: this.rotations.status(id)! } : {}),
    }));
  }

  status(): CertificateReport[] {
    return this.config.certificates.map((c) => ({
      namespace: c.namespace,
      name: c.name,
      secretName: c.spec.secretName,
      issuerRef: c.spec.issuerRef,
      status: this.statuses.get(c.id),
    }));
  }

  /** Certificate ids for `namespace/name`, or for a bare `name` in any namespace. */
  find(ref: string): string[] {
    // A follower runs no controllers but knows the Certificates (to name the leader).
    const ids = this.leading ? [...this.controllers.keys()] : this.config.certificates.map((c) => c.id);
    if (ref.includes('/')) return ids.includes(ref) ? [ref] : [];
    return ids.filter((id) => id.slice(id.indexOf('/') + 1) === ref);
  }

  /**
   * Forces re-issuance of one certificate (`envoy-sds renew`); resolves with the request
   * time. A follower refuses with NotLeaderError, which names the leader to ask.
   */
  renew(id: string): Promise<string> {
    if (!this.leading && this.leader) return Promise.reject(new NotLeaderError(id, this.leader.holder));
    const controller = this.controllers.get(id);
    if (!controller) return Promise.reject(new Error(`no Certificate ${id}`));
    return controller.requestRenewal();
  }

  /**
   * A Certificate's status asks for a re-issuance: the leader records it and issues; a
   * follower ignores it (a controller started on leading reads the request from the status).
   */
  private renewalRequested(id: string): void {
    const controller = this.leading ? this.controllers.get(id) : undefined;
    controller
      ?.requestRenewal()
      .catch((err: unknown) => this.logger.warn({ certificate: id, err: (err as Error).message }, 'could not record a requested renewal'));
  }

  /** Resolves once no controller is running (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.controllers.values()].map((c) => c.idle()));
  }

  /** `rotate-ca` on a follower names the leader, as `renew` does. */
  private rotationCommand(id: string, run: () => Promise<CaRotationStatus>): Promise<CaRotationStatus> {
    if (!this.leading && this.leader) return Promise.reject(new NotLeaderError(id, this.leader.holder));
    return run();
  }

  private createRotations(): CaRotations {
    return new CaRotations({
      persister: this.persister,
      config: () => this.config.settings.caRotation,
      issuers: () => this.config.issuers.values(),
      certificates: () => this.config.certificates,
      issuerOf: (c) => this.issuerOf(c),
      servedName: this.opts.servedName ?? ((_ns, secretName) => secretName),
      successor: async (issuer, current) => {
        // The Certificate that makes the CA Secret, issued again by its own issuer; else a copy of the old CA.
        const maker = this.config.certificates.find(
          (c) => c.namespace === issuer.secretNamespace && c.spec.secretName === issuer.spec.secretName,
        );
        const now = this.opts.now?.() ?? new Date();
        if (maker) return successorFromCertificate(maker, this.backendFor(this.issuerOf(maker)), now, this.abort.signal);
        return successorLike(current.data['tls.crt']!, current.data['tls.key']!, now);
      },
      requestRenewal: (id) => this.renew(id),
      caSecretChanged: (issuer) => {
        void this.checkIssuer(issuer);
        for (const c of this.controllers.values()) {
          if (c.certificate.namespace === issuer.secretNamespace && c.certificate.spec.secretName === issuer.spec.secretName) c.trigger();
        }
      },
      now: () => this.opts.now?.() ?? new Date(),
      logger: () => this.logger.child({ part: 'ca-rotation' }),
    });
  }

  private onIssued(issued: CertificateResource): void {
    // The issuer just worked; a CA issuer may now have the key pair that was issued.
    void this.checkIssuer(this.issuerOf(issued));
    for (const issuer of this.config.issuers.values()) {
      if (issuer.spec.type === 'ca' && issuer.spec.secretName === issued.spec.secretName && issuer.secretNamespace === issued.namespace)
        void this.checkIssuer(issuer);
    }
    // A CA Certificate just issued may be what another certificate's issuer waits for.
    for (const c of this.controllers.values()) {
      if (c.certificate.id !== issued.id && c.lastOutcome === 'waiting-for-issuer') c.trigger();
    }
  }

  private issuerOf(cert: CertificateResource): IssuerResource {
    const ref = cert.spec.issuerRef;
    const issuer = this.config.issuers.get(issuerId(ref.kind, ref.name, cert.namespace));
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
        backend = new RotatingIssuer(new CaIssuer(resource as IssuerResource & { spec: { type: 'ca' } }, this.persister), () =>
          this.rotations.bundleFor(id),
        );
        break;
      case 'invalid':
        backend = new InvalidIssuer(resource.spec.message);
        break;
      case 'acme':
        backend = new AcmeIssuer(resource as IssuerResource & { spec: { type: 'acme' } }, {
          persister: this.persister,
          http01: this.http01,
          poll: this.config.settings.acme,
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
