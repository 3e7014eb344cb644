// The engine's CA rotations: one CaRotation per `ca` issuer, made when first needed and
// resumed from its persisted state when this replica starts issuing. It is what the engine
// asks "what ca.crt goes into a Secret now?", "may this CA Certificate replace its Secret?",
// and what `rotate-ca`, status and metrics talk to.

import type { NodeDelivery } from '../../delivery/delivery-report.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Logger } from '../../observability/logger.js';
import type { PersistedSecret } from '../persisters/persister.js';
import { issuerId, type CertificateResource, type IssuerResource } from '../resources.js';
import { CaRotation, RotationRefused, type CaRotationSettings, type CaRotationStatus } from './ca-rotation.js';
import type { LockedPersister } from './locked-persister.js';
import { trustAnchorsOf, type NewCa } from './new-ca.js';
import type { CaIssuerResource } from './rotation-record.js';
import { PHASES } from './rotation-state.js';

export interface CaRotationConfig extends CaRotationSettings {
  /** A CA Certificate renewed with a new key: Staged hands the key pair to a rotation; Immediate replaces the Secret at once. */
  onCAKeyRotation: 'Staged' | 'Immediate';
}

export const DEFAULT_CA_ROTATION: CaRotationConfig = {
  ackTimeoutMs: 10 * 60_000,
  reissueWindowMs: 10 * 60_000,
  checkIntervalMs: 5_000,
  resumeGraceMs: 30_000,
  onCAKeyRotation: 'Staged',
};

/** What the rotations need from the rest of the server once it runs. */
export interface RotationContext {
  served(name: string): { version: string; pem: string } | undefined;
  deliveries(): Promise<NodeDelivery[]>;
}

export interface CaRotationsDeps {
  persister: LockedPersister;
  config: () => CaRotationConfig;
  issuers: () => Iterable<IssuerResource>;
  certificates: () => readonly CertificateResource[];
  issuerOf(cert: CertificateResource): IssuerResource;
  servedName(namespace: string, secretName: string): string;
  successor(issuer: CaIssuerResource, current: PersistedSecret): Promise<NewCa>;
  requestRenewal(certificateId: string): Promise<unknown>;
  caSecretChanged(issuer: CaIssuerResource): void;
  now(): Date;
  /** Asked when needed: the engine's logger is the server's only once it started. */
  logger(): Logger;
}

export class CaRotations {
  private readonly rotations = new Map<string, { key: string; rotation: CaRotation }>();
  private context: RotationContext | undefined;
  /** Between resume() and stop(): this replica issues, so rotations run. */
  private running = false;

  constructor(private readonly deps: CaRotationsDeps) {}

  /** Called at the engine's start: the store and the fleet's delivery rows. */
  attach(context: RotationContext, metrics?: Metrics): void {
    this.context = context;
    if (!metrics) return;
    metrics.addLabelledCollectedGauge(
      'envoy_sds_ca_rotation_phase',
      "Each CA issuer's rotation phase: 1 for the current one (Complete or Aborted once it ended), 0 for the others.",
      ['issuer', 'phase'] as const,
      () =>
        this.statuses().flatMap((s) => PHASES.map((phase) => ({ labels: { issuer: s.issuer, phase }, value: s.phase === phase ? 1 : 0 }))),
    );
    metrics.addLabelledCollectedGauge(
      'envoy_sds_ca_rotation_waiting',
      'Subscriptions (and server steps) the current phase of a CA rotation waits for.',
      ['issuer'] as const,
      () => this.statuses().map((s) => ({ labels: { issuer: s.issuer }, value: s.waitingCount })),
    );
    metrics.addLabelledCollectedGauge(
      'envoy_sds_ca_rotation_halted',
      '1 while a CA rotation is halted (a gateway rejected a bundle or a leaf).',
      ['issuer'] as const,
      () => this.statuses().map((s) => ({ labels: { issuer: s.issuer }, value: s.halted ? 1 : 0 })),
    );
  }

  /** Loads every CA issuer's rotation and resumes those under way (this replica now issues). */
  async resume(): Promise<void> {
    this.running = true;
    for (const issuer of this.deps.issuers()) {
      const r = this.rotationOf(issuer);
      if (r)
        await r
          .resume()
          .catch((err: unknown) =>
            this.deps.logger().warn({ issuer: r.id, err: (err as Error).message }, 'could not read the CA rotation state'),
          );
    }
  }

  stop(): void {
    this.running = false;
    for (const { rotation } of this.rotations.values()) rotation.stop();
  }

  /** Issuer ids matching `ref`: `ClusterIssuer/name`, `Issuer/ns/name`, `ns/name` or a bare `name`. */
  find(ref: string): string[] {
    const ids = [...this.deps.issuers()].filter((i) => i.spec.type === 'ca').map((i) => issuerId(i.kind, i.name, i.namespace));
    if (ids.includes(ref)) return [ref];
    const parts = ref.split('/');
    if (parts.length === 2) return ids.filter((id) => id === `Issuer/${parts[0]}/${parts[1]}`);
    return ids.filter((id) => id.split('/').at(-1) === ref);
  }

  begin(id: string): Promise<CaRotationStatus> {
    return this.byId(id).begin('command');
  }

  abort(id: string): Promise<CaRotationStatus> {
    return this.byId(id).abort();
  }

  status(id: string): CaRotationStatus | undefined {
    return this.rotations.get(id)?.rotation.status();
  }

  statuses(): CaRotationStatus[] {
    return [...this.rotations.values()].flatMap(({ rotation }) => rotation.status() ?? []);
  }

  /** The ca.crt an issued Secret carries now, when a rotation decides it. */
  bundleFor(id: string): string | undefined {
    return this.rotations.get(id)?.rotation.bundle();
  }

  /** Why this Certificate must not replace its Secret now: it is a CA in its Overlap phase. */
  heldBy(cert: CertificateResource): string | undefined {
    const r = this.rotationMaking(cert);
    if (r?.phase !== 'Overlap') return undefined;
    return `the CA rotation of ${r.id} is in its Overlap phase: this Secret becomes the new CA when every gateway trusts it`;
  }

  /**
   * A CA Certificate was issued with a new key: when it makes a `ca` issuer's Secret (and
   * rotations are Staged), the key pair goes to that issuer's rotation instead of the Secret.
   */
  async handOver(
    cert: CertificateResource,
    issued: { chainPem: string; keyPem: string; caPem: string | undefined },
  ): Promise<string | undefined> {
    if (this.deps.config().onCAKeyRotation !== 'Staged') return undefined;
    const r = this.rotationMaking(cert);
    if (!r) return undefined;
    const status = await r.begin('ca-key-rotation', {
      chainPem: issued.chainPem,
      keyPem: issued.keyPem,
      trustPem: trustAnchorsOf(issued.chainPem, issued.caPem),
    });
    return `the new CA key pair went to the CA rotation of ${r.id} (phase ${status.phase}): it becomes this Secret once every gateway trusts it`;
  }

  private rotationMaking(cert: CertificateResource): CaRotation | undefined {
    for (const issuer of this.deps.issuers()) {
      if (issuer.spec.type === 'ca' && issuer.spec.secretName === cert.spec.secretName && issuer.secretNamespace === cert.namespace)
        return this.rotationOf(issuer);
    }
    return undefined;
  }

  private byId(id: string): CaRotation {
    for (const issuer of this.deps.issuers()) {
      if (issuerId(issuer.kind, issuer.name, issuer.namespace) === id) {
        const r = this.rotationOf(issuer);
        if (r) return r;
      }
    }
    throw new RotationRefused(`no CA issuer ${id}`);
  }

  private rotationOf(issuer: IssuerResource): CaRotation | undefined {
    if (issuer.spec.type !== 'ca') return undefined;
    const ca = issuer as CaIssuerResource;
    const id = issuerId(issuer.kind, issuer.name, issuer.namespace);
    const key = JSON.stringify(issuer);
    const existing = this.rotations.get(id);
    if (existing?.key === key) return existing.rotation;
    existing?.rotation.stop();
    const rotation = new CaRotation({
      issuer: ca,
      persister: this.deps.persister,
      settings: this.deps.config(),
      leaves: () =>
        this.deps
          .certificates()
          .filter((c) => issuerId(this.deps.issuerOf(c).kind, this.deps.issuerOf(c).name, this.deps.issuerOf(c).namespace) === id),
      servedName: (ns, name) => this.deps.servedName(ns, name),
      served: (name) => this.context?.served(name),
      deliveries: () => this.context?.deliveries() ?? Promise.resolve([]),
      requestRenewal: (certificateId) => this.deps.requestRenewal(certificateId),
      successor: (current) => this.deps.successor(ca, current),
      caSecretChanged: () => this.deps.caSecretChanged(ca),
      now: () => this.deps.now(),
      logger: this.deps.logger().child({ issuer: id }),
    });
    this.rotations.set(id, { key, rotation });
    // An issuer changed while this replica issues (a custom resource edited): its rotation goes on.
    if (existing && this.running)
      void rotation
        .resume()
        .catch((err: unknown) =>
          this.deps.logger().warn({ issuer: id, err: (err as Error).message }, 'could not read the CA rotation state'),
        );
    return rotation;
  }
}
