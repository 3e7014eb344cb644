// One CA issuer's staged rotation (phases in rotation-state.ts): a reconciler that, on every
// tick, makes the Secrets what the phase wants (ca.crt bundles, the CA Secret, re-issue
// requests) and asks the ACK gate whether the fleet has caught up. Every step is
// idempotent, so a tick cut short by a crash or a lost lease is simply done again.

import type { NodeDelivery } from '../../delivery/delivery-report.js';
import type { Logger } from '../../observability/logger.js';
import type { PersistedSecret } from '../persisters/persister.js';
import type { CertificateResource } from '../resources.js';
import { ANNOTATIONS } from '../secret-facts.js';
import type { Waiting } from '../../delivery/ack-gate.js';
import { bundleGate, leafGate, type GateAnswer } from './rotation-gates.js';
import {
  bundleOf,
  describeCa,
  firstCertificateId,
  sameCertificates,
  signedBy,
  splitCertificates,
  type CaDescription,
} from '../../pki/ca-bundle.js';
import type { LockedPersister } from './locked-persister.js';
import { trustAnchorsOf, type NewCa } from './new-ca.js';
import { readRotation, writeRotation, type CaIssuerResource, type RotationRecord } from './rotation-record.js';
import { isActive, withPhase, type RotationPhase, type RotationState } from './rotation-state.js';

export interface CaRotationSettings {
  /** Overlap (and Retire) end at this deadline even if some subscriber has not ACKed. */
  ackTimeoutMs: number;
  /** Re-issuance of the leaves is spread over this long. */
  reissueWindowMs: number;
  /** How often the gate is looked at again. */
  checkIntervalMs: number;
  /**
   * After this replica starts issuing, gates stay shut this long: the streams it lost come
   * back (Envoy reconnects within its backoff) and say what they hold before "nobody is
   * behind" can be believed.
   */
  resumeGraceMs: number;
}

export interface CaRotationDeps {
  issuer: CaIssuerResource;
  persister: LockedPersister;
  settings: CaRotationSettings;
  /** Certificates this issuer signs: their Secrets carry the bundle and are re-issued. */
  leaves(): CertificateResource[];
  /** The SDS name a Secret is served under. */
  servedName(namespace: string, secretName: string): string;
  /** What this replica's store serves under a name: its version and PEM (chain or bundle). */
  served(name: string): { version: string; pem: string } | undefined;
  /** Every replica's delivery rows (this one's alone when there is no fleet). */
  deliveries(): Promise<NodeDelivery[]>;
  requestRenewal(certificateId: string): Promise<unknown>;
  /** The CA to move to, made from the current CA Secret. */
  successor(current: PersistedSecret): Promise<NewCa>;
  /** The CA Secret was replaced: the engine re-checks the issuer and wakes its Certificate. */
  caSecretChanged(): void;
  now(): Date;
  logger: Logger;
}

/** A user-facing refusal (`rotate-ca` answers it as 409 with this message). */
export class RotationRefused extends Error {
  readonly code = 'ROTATION_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'RotationRefused';
  }
}

/** What /issuance/status, /status and the status page show of a rotation. Never a key. */
export interface CaRotationStatus {
  issuer: string;
  phase: RotationPhase;
  trigger: RotationState['trigger'];
  startedAt: string;
  phaseSince: string;
  oldCA: CaDescription[];
  newCA: CaDescription[];
  /** Overlap and Retire: when the phase ends even without every ACK. */
  deadline?: string;
  overlapEnded?: RotationState['overlapEnded'];
  leaves?: { total: number; reissued: number; requested: number };
  /** Subscriptions (and server steps) the gate waits for; the first 20. */
  waitingFor: Waiting[];
  waitingCount: number;
  subscribers: number;
  checkedAt?: string;
  halted?: RotationState['halted'];
  history: RotationState['history'];
}

const SHOWN_WAITING = 20;

export class CaRotation {
  private record: RotationRecord | undefined;
  private loaded = false;
  private serial: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private resumedAt = 0;
  private gate: { at: string; subscribers: number; waiting: Waiting[]; leaves?: CaRotationStatus['leaves'] } | undefined;

  constructor(private readonly deps: CaRotationDeps) {}

  get id(): string {
    return this.deps.issuer.kind === 'ClusterIssuer'
      ? `ClusterIssuer/${this.deps.issuer.name}`
      : `Issuer/${this.deps.issuer.namespace}/${this.deps.issuer.name}`;
  }

  /** Loads the persisted state and, when a rotation is under way, resumes it. */
  resume(): Promise<void> {
    this.stopped = false;
    this.resumedAt = this.deps.now().getTime();
    return this.serialized(async () => {
      await this.load();
      if (this.record && isActive(this.record.state.phase)) {
        this.deps.logger.info({ phase: this.record.state.phase }, 'resuming the CA rotation');
        this.schedule(0);
      }
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The phase, when a rotation is under way. */
  get phase(): RotationPhase | undefined {
    const p = this.record?.state.phase;
    return p && isActive(p) ? p : undefined;
  }

  /** The bundle issued Secrets carry now (the decorated issuer's ca.crt); undefined: the issuer's own. */
  bundle(): string | undefined {
    const s = this.record?.state;
    if (!s) return undefined;
    switch (s.phase) {
      case 'Overlap':
      case 'Reissue':
        // One order for both phases: a re-issued leaf's ca.crt then pushes no new bundle version.
        return bundleOf(s.oldTrustPem, s.newTrustPem);
      case 'Retire':
      case 'Complete':
        return bundleOf(s.newTrustPem);
      case 'Aborted':
        return undefined;
    }
  }

  /**
   * Starts a rotation (or resumes a halted one). `newCa` given: the CA Certificate's own
   * key rotation hands over the key pair it just made; otherwise a successor is made here.
   */
  begin(trigger: RotationState['trigger'], newCa?: NewCa): Promise<CaRotationStatus> {
    return this.serialized(async () => {
      await this.load();
      const r = this.record;
      if (r && isActive(r.state.phase)) {
        if (r.state.halted) {
          this.deps.logger.info({ phase: r.state.phase }, 'CA rotation resumed after a halt');
          const { halted: _h, ...rest } = r.state;
          void _h;
          await this.save({ ...r, state: rest });
          this.schedule(0);
          return this.status()!;
        }
        if (trigger === 'command')
          throw new RotationRefused(
            `${this.id} is already rotating (phase ${r.state.phase}); see its status, or rotate-ca --abort during Overlap`,
          );
        return this.status()!;
      }
      const { issuer } = this.deps;
      const current = await this.deps.persister.readSecret(issuer.secretNamespace, issuer.spec.secretName);
      const chain = current?.data['tls.crt'];
      if (!current || !chain || !current.data['tls.key'])
        throw new RotationRefused(
          `${this.id}: CA Secret ${issuer.secretNamespace}/${issuer.spec.secretName} has no key pair to rotate from`,
        );
      const next = newCa ?? (await this.deps.successor(current));
      const now = this.deps.now();
      const state: RotationState = {
        issuer: this.id,
        phase: 'Overlap',
        trigger,
        startedAt: now.toISOString(),
        phaseSince: now.toISOString(),
        oldTrustPem: trustAnchorsOf(chain, current.data['ca.crt']),
        newChainPem: next.chainPem,
        newTrustPem: next.trustPem,
        deadline: new Date(now.getTime() + this.deps.settings.ackTimeoutMs).toISOString(),
        requested: {},
        history: [
          {
            phase: 'Overlap',
            at: now.toISOString(),
            note: trigger === 'command' ? 'started by rotate-ca' : "started by the CA Certificate's key rotation",
          },
        ],
      };
      await this.save({ state, newKeyPem: next.keyPem });
      this.gate = undefined;
      this.deps.logger.info(
        { trigger, newCA: describeCa(next.chainPem).sha256Fingerprint },
        'CA rotation started: bundles now carry the old and the new CA',
      );
      this.schedule(0);
      return this.status()!;
    });
  }

  /** Back to the old CA alone; only while the new one has signed nothing (Overlap). */
  abort(): Promise<CaRotationStatus> {
    return this.serialized(async () => {
      await this.load();
      const r = this.record;
      if (!r || !isActive(r.state.phase)) throw new RotationRefused(`${this.id} has no rotation in progress`);
      if (r.state.phase !== 'Overlap')
        throw new RotationRefused(`${this.id}: the new CA already signs (phase ${r.state.phase}); abort is possible during Overlap only`);
      await this.ensureBundles(bundleOf(r.state.oldTrustPem));
      await this.save({
        state: withPhase(r.state, 'Aborted', this.deps.now(), 'aborted by rotate-ca --abort: bundles hold the old CA alone'),
        newKeyPem: undefined,
      });
      clearTimeout(this.timer);
      this.deps.logger.warn({}, 'CA rotation aborted: bundles hold the old CA alone again');
      // A CA Certificate whose key rotation started it looks again (and may start another).
      this.deps.caSecretChanged();
      return this.status()!;
    });
  }

  /** Runs one reconciliation now (tests, and after a command). */
  tick(): Promise<void> {
    return this.serialized(() => this.reconcile());
  }

  status(): CaRotationStatus | undefined {
    const s = this.record?.state;
    if (!s) return undefined;
    const describe = (pem: string) => splitCertificates(pem).map(describeCa);
    const active = isActive(s.phase);
    return {
      issuer: s.issuer,
      phase: s.phase,
      trigger: s.trigger,
      startedAt: s.startedAt,
      phaseSince: s.phaseSince,
      oldCA: describe(s.oldTrustPem),
      newCA: describe(s.newTrustPem),
      ...(s.phase === 'Overlap' || s.phase === 'Retire' ? { deadline: s.deadline } : {}),
      ...(s.overlapEnded ? { overlapEnded: s.overlapEnded } : {}),
      ...(active && this.gate?.leaves ? { leaves: this.gate.leaves } : {}),
      waitingFor: active ? (this.gate?.waiting.slice(0, SHOWN_WAITING) ?? []) : [],
      waitingCount: active ? (this.gate?.waiting.length ?? 0) : 0,
      subscribers: active ? (this.gate?.subscribers ?? 0) : 0,
      ...(active && this.gate ? { checkedAt: this.gate.at } : {}),
      ...(s.halted ? { halted: s.halted } : {}),
      history: s.history,
    };
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.serial.then(fn);
    this.serial = next.catch(() => undefined);
    return next;
  }

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.record = await readRotation(this.deps.persister, this.deps.issuer);
    this.loaded = true;
  }

  private async save(record: RotationRecord): Promise<void> {
    await writeRotation(this.deps.persister, this.deps.issuer, record);
    // A new phase has its own gate: the last one's answer would mislead.
    if (record.state.phase !== this.record?.state.phase) this.gate = undefined;
    this.record = record;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.serialized(() => this.reconcile()).catch((err: unknown) =>
        this.deps.logger.warn({ err: (err as Error).message }, 'CA rotation step failed; trying again'),
      );
      // The next look is scheduled whatever this one did (a failure is tried again).
      this.timer = undefined;
    }, ms);
    this.timer.unref();
  }

  private async reconcile(): Promise<void> {
    const r = this.record;
    if (!r || !isActive(r.state.phase) || this.stopped) return;
    try {
      if (!r.state.halted) await this.step(r);
    } finally {
      if (this.record && isActive(this.record.state.phase) && !this.record.state.halted) this.schedule(this.deps.settings.checkIntervalMs);
    }
  }

  private async step(r: RotationRecord): Promise<void> {
    const s = r.state;
    const now = this.deps.now();
    switch (s.phase) {
      case 'Overlap': {
        const bundle = bundleOf(s.oldTrustPem, s.newTrustPem);
        await this.ensureBundles(bundle);
        const gate = await this.remember(bundleGate(this.deps, this.managedSecrets(), bundle));
        if (await this.haltedBy(r, gate)) return;
        if (gate.waiting.length === 0 || now.getTime() >= Date.parse(s.deadline)) {
          const how = gate.waiting.length === 0 ? 'acknowledged' : 'timeout';
          if (how === 'timeout')
            this.deps.logger.warn(
              { waiting: gate.waiting.length, first: gate.waiting[0] },
              'CA rotation: overlap deadline passed with subscribers behind; re-issuing anyway',
            );
          const note =
            how === 'acknowledged'
              ? `every subscriber (${gate.subscribers}) ACKed the overlap bundles`
              : `deadline passed with ${gate.waiting.length} subscription(s) behind`;
          await this.save({ ...r, state: { ...withPhase(s, 'Reissue', now, note), overlapEnded: how } });
          this.deps.logger.info({ overlapEnded: how }, 'CA rotation: re-issuing from the new CA');
          await this.step(this.record!);
        }
        return;
      }
      case 'Reissue': {
        await this.ensureCaSecret(r);
        await this.ensureBundles(bundleOf(s.oldTrustPem, s.newTrustPem));
        await this.requestDueRenewals(r, now);
        const gate = await this.remember(leafGate(this.deps, this.deps.leaves(), this.record!.state));
        if (await this.haltedBy(this.record!, gate)) return;
        if (gate.waiting.length === 0) {
          const deadline = new Date(now.getTime() + this.deps.settings.ackTimeoutMs);
          await this.save({
            ...this.record!,
            state: withPhase(
              this.record!.state,
              'Retire',
              now,
              `every leaf is signed by the new CA and ACKed where served (${gate.subscribers} subscriptions)`,
              deadline,
            ),
          });
          this.deps.logger.info({}, 'CA rotation: retiring the old CA from the bundles');
          await this.step(this.record!);
        }
        return;
      }
      case 'Retire': {
        const bundle = bundleOf(s.newTrustPem);
        await this.ensureBundles(bundle);
        const gate = await this.remember(bundleGate(this.deps, this.managedSecrets(), bundle));
        if (await this.haltedBy(r, gate)) return;
        if (gate.waiting.length === 0 || now.getTime() >= Date.parse(s.deadline)) {
          const note =
            gate.waiting.length === 0
              ? `every subscriber (${gate.subscribers}) ACKed the bundles without the old CA`
              : `deadline passed with ${gate.waiting.length} subscription(s) behind`;
          await this.save({ state: withPhase(s, 'Complete', now, note), newKeyPem: undefined });
          this.deps.logger.info({}, 'CA rotation complete');
        }
        return;
      }
      default:
        return;
    }
  }

  /** A NACK of a target version halts the rotation where it stands, naming the gateway. */
  private async haltedBy(r: RotationRecord, gate: GateAnswer): Promise<boolean> {
    const n = gate.nack;
    if (!n) return false;
    const message = `gateway ${n.node} (cluster ${n.cluster || '-'}, replica ${n.replica}) rejected ${n.secret} version ${n.version.slice(0, 12)}: ${n.message}`;
    await this.save({ ...r, state: { ...r.state, halted: { reason: 'Rejected', message, at: this.deps.now().toISOString() } } });
    this.deps.logger.error(
      { phase: r.state.phase, node: n.node, secret: n.secret },
      `CA rotation halted: ${message}; fix the gateway, then rotate-ca again to resume (or --abort during Overlap)`,
    );
    return true;
  }

  /** Every Secret whose ca.crt comes from this CA: the leaves' and the CA Secret's own. */
  private managedSecrets(): Array<{ namespace: string; name: string }> {
    const { issuer } = this.deps;
    const out = new Map<string, { namespace: string; name: string }>();
    out.set(`${issuer.secretNamespace}/${issuer.spec.secretName}`, { namespace: issuer.secretNamespace, name: issuer.spec.secretName });
    for (const c of this.deps.leaves()) out.set(`${c.namespace}/${c.spec.secretName}`, { namespace: c.namespace, name: c.spec.secretName });
    return [...out.values()];
  }

  /** ca.crt := bundle wherever a key pair is already issued (the revision moves on, so Kubernetes writers order it). */
  private async ensureBundles(bundle: string): Promise<void> {
    for (const { namespace, name } of this.managedSecrets()) {
      const changed = await this.deps.persister.update(namespace, name, (cur) => {
        if (!cur?.data['tls.crt'] || sameCertificates(cur.data['ca.crt'], bundle)) return undefined;
        return { data: { ...cur.data, 'ca.crt': bundle }, annotations: nextRevision(cur.annotations) };
      });
      if (changed) this.deps.logger.info({ secret: `${namespace}/${name}` }, 'CA rotation: ca.crt rewritten');
    }
  }

  /** Reissue: the CA Secret holds the new key pair (written once; again only if something put the old one back). */
  private async ensureCaSecret(r: RotationRecord): Promise<void> {
    const { issuer } = this.deps;
    const s = r.state;
    const newId = firstCertificateId(s.newChainPem);
    const keyPem = r.newKeyPem;
    const changed = await this.deps.persister.update(issuer.secretNamespace, issuer.spec.secretName, (cur) => {
      if (firstCertificateId(cur?.data['tls.crt']) === newId) return undefined;
      if (!keyPem)
        throw new Error('the new CA key is gone from the rotation record; abort is no longer possible, restore it or rotate again');
      return {
        data: { 'tls.crt': s.newChainPem, 'tls.key': keyPem, 'ca.crt': bundleOf(s.oldTrustPem, s.newTrustPem) },
        annotations: nextRevision(cur?.annotations ?? {}),
      };
    });
    if (changed) {
      this.deps.logger.info(
        { secret: `${issuer.secretNamespace}/${issuer.spec.secretName}` },
        'CA rotation: the CA Secret holds the new CA key pair',
      );
      this.deps.caSecretChanged();
    }
  }

  /** Leaf i of n is asked for at phaseSince + i/n of the window. */
  private async requestDueRenewals(r: RotationRecord, now: Date): Promise<void> {
    const s = r.state;
    const leaves = [...this.deps.leaves()].sort((a, b) => a.id.localeCompare(b.id));
    const start = Date.parse(s.phaseSince);
    const newCa = firstPem(s.newChainPem);
    const requested = { ...s.requested };
    let changed = false;
    for (const [i, leaf] of leaves.entries()) {
      if (requested[leaf.id]) continue;
      if (now.getTime() < start + (i * this.deps.settings.reissueWindowMs) / leaves.length) break;
      const secret = await this.deps.persister.readSecret(leaf.namespace, leaf.spec.secretName);
      if (secret?.data['tls.crt'] && signedBy(secret.data['tls.crt'], newCa)) continue;
      try {
        await this.deps.requestRenewal(leaf.id);
        requested[leaf.id] = now.toISOString();
        changed = true;
        this.deps.logger.info({ certificate: leaf.id }, 'CA rotation: re-issuance requested');
      } catch (err) {
        this.deps.logger.warn(
          { certificate: leaf.id, err: (err as Error).message },
          'CA rotation: could not request a re-issuance; trying again',
        );
      }
    }
    if (changed) await this.save({ ...this.record!, state: { ...this.record!.state, requested } });
  }

  /** Runs a gate and keeps its answer for status. */
  private async remember(answer: Promise<GateAnswer>): Promise<GateAnswer> {
    let a = await answer;
    const graceLeft = this.resumedAt + this.deps.settings.resumeGraceMs - this.deps.now().getTime();
    if (graceLeft > 0)
      a = { ...a, waiting: [{ secret: '*', state: `RESUMING (streams reconnect; ${Math.ceil(graceLeft / 1000)} s left)` }, ...a.waiting] };
    this.gate = {
      at: this.deps.now().toISOString(),
      subscribers: a.subscribers,
      waiting: a.waiting,
      ...(a.leaves ? { leaves: a.leaves } : {}),
    };
    return a;
  }
}

function nextRevision(annotations: Record<string, string>): Record<string, string> {
  const n = Number(annotations[ANNOTATIONS.revision]);
  return Number.isSafeInteger(n) ? { ...annotations, [ANNOTATIONS.revision]: String(n + 1) } : { ...annotations };
}

function firstPem(pem: string): string {
  return splitCertificates(pem)[0] ?? '';
}
