// Runs the shims (shim-certificates.ts): watches Gateways and/or Ingresses and keeps, for
// each annotated one, exactly the Certificate custom resources it asks for, owned by it
// (ownerReferences, controller: true) and labelled with its uid. A change of the object
// updates them, a TLS entry removed deletes its Certificate, and the object's deletion
// deletes them all (the garbage collector would too; doing it here does not wait for it).
// A Certificate of the same name that the shim did not make is never touched.

import type { KubernetesConfig } from '../../config/kubernetes-config.js';
import type { KubeClient } from '../../kubernetes/kube-client.js';
import { KubeApiError } from '../../kubernetes/kube-errors.js';
import { metaOf, ResourceInformer, type ObjectMeta } from '../../kubernetes/resource-informer.js';
import type { Logger } from '../../observability/logger.js';
import { API_VERSION } from '../resources.js';
import { desiredCertificates, reduceShimOwner, SHIM_OWNER_LABEL, type OwnerKind, type ShimOwner } from './shim-certificates.js';

export const CERT_MANAGER_CERTIFICATE_CRD = 'certificates.cert-manager.io';

export interface ShimSettings {
  gateways: boolean;
  ingresses: boolean;
  /** Honour cert-manager.io/{issuer,cluster-issuer} too: refused while cert-manager's CRDs are served. */
  certManagerAnnotations: boolean;
}

/** cert-manager runs in this cluster: its shims would answer the same annotations. */
export class CertManagerPresentError extends Error {
  readonly code = 'CERT_MANAGER_PRESENT';
  constructor() {
    super(
      `issuance.shims.certManagerAnnotations: refused, the API server serves cert-manager's CRD ${CERT_MANAGER_CERTIFICATE_CRD}, so cert-manager's own shims answer cert-manager.io annotations; use envoy-sds.io/issuer or envoy-sds.io/cluster-issuer instead`,
    );
    this.name = 'CertManagerPresentError';
  }
}

interface Owned {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string>; ownerReferences?: unknown[] };
  spec?: unknown;
}

const RETRY_MS = [500, 1000, 2000, 5000, 10_000];

type WatchedOwner = ShimOwner & { meta: ObjectMeta };

export class ShimController {
  private readonly informers: Array<ResourceInformer<WatchedOwner>> = [];
  /** "Kind/ns/name" -> the last state seen (its uid outlives a deletion event). */
  private readonly owners = new Map<string, ShimOwner>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private running: Promise<void> | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: { client: () => KubeClient; kubernetes: KubernetesConfig; settings: ShimSettings; logger: Logger }) {}

  async start(): Promise<void> {
    const { settings, kubernetes } = this.opts;
    if (settings.certManagerAnnotations && (await this.certManagerServed())) throw new CertManagerPresentError();
    const client = this.opts.client();
    const scopes = kubernetes.namespaces.length > 0 ? kubernetes.namespaces : [''];
    const kinds: Array<[OwnerKind, string, string]> = [];
    if (settings.gateways) kinds.push(['Gateway', '/apis/gateway.networking.k8s.io/v1', 'gateways']);
    if (settings.ingresses) kinds.push(['Ingress', '/apis/networking.k8s.io/v1', 'ingresses']);
    for (const [kind, api, plural] of kinds) {
      for (const ns of scopes) {
        const informer = new ResourceInformer<WatchedOwner>({
          client,
          resource: plural,
          path: ns ? `${api}/namespaces/${ns}/${plural}` : `${api}/${plural}`,
          reduce: (raw) => ({ ...reduceShimOwner(kind, raw), meta: metaOf(raw) }),
          onChange: (key, obj) => this.changed(`${kind}/${key}`, obj),
          logger: this.opts.logger.child({ scope: ns || 'cluster', part: 'shim' }),
          silentMs: kubernetes.watch.silentMs,
          backoffInitialMs: kubernetes.watch.backoffInitialMs,
          backoffMaxMs: kubernetes.watch.backoffMaxMs,
          pageSize: kubernetes.watch.pageSize,
        });
        this.informers.push(informer);
        informer.start();
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.running;
  }

  private async certManagerServed(): Promise<boolean> {
    try {
      await this.opts.client().request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CERT_MANAGER_CERTIFICATE_CRD}`);
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return false;
      throw err;
    }
  }

  private changed(key: string, owner: WatchedOwner | undefined): void {
    if (owner) this.owners.set(key, owner);
    else {
      const gone = this.owners.get(key);
      // The deletion is reconciled with an empty wish: its Certificates go.
      if (gone) this.owners.set(key, { ...gone, annotations: {}, tls: new Map() });
    }
    this.dirty.add(key);
    this.kick();
  }

  /** One reconcile loop at a time; keys changed meanwhile are picked up by it. */
  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.dirty.size > 0 && !this.stopped) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.dirty.size > 0 && !this.stopped) {
      const key = this.dirty.values().next().value!;
      this.dirty.delete(key);
      const owner = this.owners.get(key);
      if (!owner) continue;
      try {
        await this.reconcile(owner);
        this.failures.delete(key);
        if (owner.tls.size === 0 && Object.keys(owner.annotations).length === 0) this.owners.delete(key);
      } catch (err) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        this.opts.logger.warn(
          { owner: key, err: (err as Error).message, attempt: n },
          'shim: could not bring the Certificates in line; trying again',
        );
        this.retryLater(key, RETRY_MS[Math.min(n, RETRY_MS.length) - 1]!);
      }
    }
  }

  private retryLater(key: string, ms: number): void {
    if (this.stopped) return;
    setTimeout(() => {
      this.dirty.add(key);
      this.kick();
    }, ms).unref();
  }

  private async reconcile(owner: ShimOwner): Promise<void> {
    const client = this.opts.client();
    const collection = `/apis/${API_VERSION}/namespaces/${owner.namespace}/certificates`;
    const existing = await client.request<{ items?: Owned[] }>('GET', collection, {
      query: { labelSelector: `${SHIM_OWNER_LABEL}=${owner.uid}` },
    });
    const have = new Map((existing.items ?? []).map((c) => [c.metadata.name, c]));
    const want = desiredCertificates(owner, this.opts.settings.certManagerAnnotations);
    for (const doc of want) {
      const meta = doc['metadata'] as { name: string };
      const current = have.get(meta.name);
      have.delete(meta.name);
      if (!current) {
        try {
          await client.request('POST', collection, { body: doc });
          this.opts.logger.info(
            { owner: `${owner.kind} ${owner.namespace}/${owner.name}`, certificate: meta.name },
            'shim: Certificate created',
          );
        } catch (err) {
          if (!(err instanceof KubeApiError && err.status === 409)) throw err;
          this.opts.logger.warn(
            { owner: `${owner.kind} ${owner.namespace}/${owner.name}`, certificate: meta.name },
            "shim: a Certificate of that name exists and is not this object's; left alone",
          );
        }
      } else if (JSON.stringify(current.spec) !== JSON.stringify(doc['spec'])) {
        const body = { ...doc, metadata: { ...(doc['metadata'] as object), resourceVersion: current.metadata.resourceVersion } };
        await client.request('PUT', `${collection}/${meta.name}`, { body });
        this.opts.logger.info(
          { owner: `${owner.kind} ${owner.namespace}/${owner.name}`, certificate: meta.name },
          'shim: Certificate updated',
        );
      }
    }
    for (const name of have.keys()) {
      try {
        await client.request('DELETE', `${collection}/${name}`);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 404)) throw err;
      }
      this.opts.logger.info({ owner: `${owner.kind} ${owner.namespace}/${owner.name}`, certificate: name }, 'shim: Certificate deleted');
    }
  }
}
