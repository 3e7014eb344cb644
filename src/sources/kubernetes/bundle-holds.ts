// The overlap for CA bundles the server does not issue (opt-in per name): when a watched
// `-cacert` Secret or `configmap://` bundle changes and drops a CA, the server keeps serving
// the union (the new bundle plus the dropped CAs) for `holdFor`, or (release: acknowledged)
// until every subscriber has ACKed the union, whichever comes first, then serves the new
// bundle as written. A gateway thus learns a new CA before it loses the old one, even when
// whoever writes the bundle swaps them in one step. It sits between a source and the
// store, and says what it holds in /status.

import { matchesNamePattern } from '../../authz/name-pattern.js';
import type { BundleHoldRule } from '../../config/kubernetes-config.js';
import type { Logger } from '../../observability/logger.js';
import { bundleOf, certificateIds, describeCa, splitCertificates, type CaDescription } from '../../pki/ca-bundle.js';
import type { SecretMaterial, SecretOrigin } from '../../store/secret-material.js';
import type { PutResult, SecretStore } from '../../store/secret-store.js';

/** A bundle served as a union for now, as /status shows it. */
export interface HeldBundle {
  name: string;
  since: string;
  until: string;
  release: BundleHoldRule['release'];
  /** The CAs the new bundle drops and the union still carries. */
  dropped: CaDescription[];
}

export interface BundleHoldsOptions {
  store: Pick<SecretStore, 'get' | 'offer' | 'delete'>;
  rules: readonly BundleHoldRule[];
  /** Whether every subscriber of `name` (fleet-wide) has ACKed `version`. */
  acknowledged: (name: string, version: string) => Promise<boolean>;
  logger: Logger;
  now?: () => Date;
  /** How often holds are looked at. Default 1 s. */
  checkMs?: number;
}

interface Hold {
  target: SecretMaterial & { kind: 'validation_context' };
  origin: SecretOrigin;
  union: string;
  since: Date;
  until: Date;
  rule: BundleHoldRule;
  dropped: string[];
}

export class BundleHolds {
  private readonly holds = new Map<string, Hold>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private readonly now: () => Date;

  constructor(private readonly opts: BundleHoldsOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.opts.checkMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get(name: string): ReturnType<SecretStore['get']> {
    return this.opts.store.get(name);
  }

  delete(name: string, origin: SecretOrigin): boolean {
    this.holds.delete(name);
    return this.opts.store.delete(name, origin);
  }

  /** The store's offer, with the union in place of a bundle that drops a CA of a held name. */
  offer(name: string, material: SecretMaterial, origin: SecretOrigin): Promise<PutResult> {
    const rule = this.opts.rules.find((r) => r.names.some((p) => matchesNamePattern(p, name)));
    const held = this.holds.get(name);
    if (!rule || material.kind !== 'validation_context') {
      this.holds.delete(name);
      return this.opts.store.offer(name, material, origin);
    }
    // What gateways may hold now: the union being served, else the bundle served.
    const served = held?.union ?? this.trustedCaOf(name);
    const kept = new Set(certificateIds(material.trustedCa));
    const dropped = served ? splitCertificates(served).filter((pem) => !kept.has(certificateIds(pem)[0]!)) : [];
    if (dropped.length === 0) {
      if (held) this.opts.logger.info({ secret: name }, 'CA bundle hold ended: the new bundle keeps every CA');
      this.holds.delete(name);
      return this.opts.store.offer(name, material, origin);
    }
    const now = this.now();
    const since = held?.since ?? now;
    const union = bundleOf(material.trustedCa, ...dropped);
    const hold: Hold = { target: material, origin, union, since, until: new Date(since.getTime() + rule.holdForMs), rule, dropped };
    this.holds.set(name, hold);
    if (!held)
      this.opts.logger.info(
        { secret: name, dropped: dropped.length, until: hold.until.toISOString(), release: rule.release },
        'CA bundle drops a CA: serving the union until gateways have the new one',
      );
    return this.opts.store.offer(name, { ...material, trustedCa: union }, origin);
  }

  held(): HeldBundle[] {
    return [...this.holds].map(([name, h]) => ({
      name,
      since: h.since.toISOString(),
      until: h.until.toISOString(),
      release: h.rule.release,
      dropped: h.dropped.map(describeCa),
    }));
  }

  /** Releases holds that are due: time passed, or (acknowledged) every subscriber ACKed the union. */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const [name, h] of [...this.holds]) {
        let why: string | undefined;
        if (this.now().getTime() >= h.until.getTime()) why = 'holdFor passed';
        else if (h.rule.release === 'acknowledged') {
          const s = this.opts.store.get(name);
          const servingUnion = s?.material.kind === 'validation_context' && s.material.trustedCa === h.union;
          if (servingUnion && (await this.opts.acknowledged(name, s.version).catch(() => false))) why = 'every subscriber ACKed the union';
        }
        if (!why || this.holds.get(name) !== h) continue;
        this.holds.delete(name);
        this.opts.logger.info(
          { secret: name, dropped: h.dropped.length },
          `CA bundle hold released (${why}): serving the bundle as written`,
        );
        void this.opts.store.offer(name, h.target, h.origin);
      }
    } finally {
      this.checking = false;
    }
  }

  private trustedCaOf(name: string): string | undefined {
    const s = this.opts.store.get(name);
    return s?.material.kind === 'validation_context' ? s.material.trustedCa : undefined;
  }
}
