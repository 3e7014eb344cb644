// Issuers, ClusterIssuers and Certificates as custom resources (envoy-sds.io/v1alpha1,
// deploy/crds/): watched with the same informer as Secrets, parsed with the config
// file's parser, and handed to the engine as a whole after every change (the engine
// restarts only the controllers whose Certificate or issuer changed).
//
// One bad object does not stop the others: each issuer is parsed alone, then each
// Certificate with the valid issuers. A Certificate that does not parse (or names an
// issuer that does not, or is missing) gets Ready=False, reason InvalidSpec, in its
// status, and is not issued until it is fixed. A status write by the engine comes back
// as a watch event and parses to the same resources: the engine then changes nothing.

import type { KubeClient } from '../kubernetes/kube-client.js';
import type { KubernetesConfig } from '../config/kubernetes-config.js';
import type { Logger } from '../observability/logger.js';
import { metaOf, ResourceInformer, type ObjectMeta } from '../kubernetes/resource-informer.js';
import { emptyStatus, withCondition, withoutCondition, type CertificateStatus } from './certificate-status.js';
import { writeCertificateStatus } from './persisters/custom-resource-persister.js';
import { externalRenewalRequest } from './manual-trigger.js';
import { parseIssuanceResources, type IssuanceConfig, type ResourceDocument } from './issuance-config.js';
import { API_VERSION, issuerId, type IssuerResource } from './resources.js';
import { certificateStatus } from './schema/status.js';

type Kind = 'Issuer' | 'ClusterIssuer' | 'Certificate';

interface CustomResource {
  meta: ObjectMeta;
  kind: Kind;
  /** apiVersion, kind, metadata (name, namespace, labels, annotations) and spec, for the parser. */
  doc: Record<string, unknown>;
  status: CertificateStatus | undefined;
}

export interface CustomResourceSourceOptions {
  client: () => KubeClient;
  kubernetes: KubernetesConfig;
  parse: { clusterResourceNamespace: string; baseDir: string };
  onResources: (resources: Pick<IssuanceConfig, 'issuers' | 'certificates'>) => Promise<void>;
  /** A Certificate's status asks for a re-issuance (`renew --kubernetes`, cmctl renew): its id. */
  onRenewalRequested?: (id: string) => void;
  logger: Logger;
  now?: () => Date;
}

const PLURALS: Record<Kind, string> = { Issuer: 'issuers', ClusterIssuer: 'clusterissuers', Certificate: 'certificates' };

export class CustomResourceSource {
  private readonly informers: Array<ResourceInformer<CustomResource>> = [];
  private readonly objects = new Map<string, CustomResource>();
  private pending: NodeJS.Immediate | undefined;
  private applying: Promise<void> = Promise.resolve();
  private stopped = false;
  /** What each invalid issuer was last reported for: said once per change, not on every apply. */
  private readonly invalidWarned = new Map<string, string>();
  private readonly renewalsSignalled = new Map<string, string>();

  constructor(private readonly opts: CustomResourceSourceOptions) {}

  start(): void {
    const { kubernetes } = this.opts;
    const client = this.opts.client();
    const scopes = kubernetes.namespaces.length > 0 ? kubernetes.namespaces : [''];
    const add = (kind: Kind, path: string, scope: string) => {
      const informer = new ResourceInformer<CustomResource>({
        client,
        resource: PLURALS[kind],
        path,
        reduce: (o) => reduce(kind, o),
        onChange: (key, obj) => {
          if (obj && kind === 'Certificate') this.noticeRenewalRequest(key, obj);
          if (obj) this.objects.set(`${kind}/${key}`, obj);
          else this.objects.delete(`${kind}/${key}`);
          this.schedule();
        },
        logger: this.opts.logger.child({ scope: scope || 'cluster' }), // the informer names its resource
        silentMs: kubernetes.watch.silentMs,
        backoffInitialMs: kubernetes.watch.backoffInitialMs,
        backoffMaxMs: kubernetes.watch.backoffMaxMs,
        pageSize: kubernetes.watch.pageSize,
      });
      this.informers.push(informer);
      informer.start();
    };
    add('ClusterIssuer', `/apis/${API_VERSION}/clusterissuers`, '');
    for (const ns of scopes) {
      const prefix = ns ? `/apis/${API_VERSION}/namespaces/${ns}` : `/apis/${API_VERSION}`;
      add('Issuer', `${prefix}/issuers`, ns);
      add('Certificate', `${prefix}/certificates`, ns);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearImmediate(this.pending);
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.applying;
  }

  /** Resolves once every informer has listed once. */
  async whenSynced(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.whenSynced()));
  }

  /** Tells the engine once per request (a request is its condition's transition time). */
  private noticeRenewalRequest(key: string, obj: CustomResource): void {
    const at = externalRenewalRequest(obj.status);
    if (at === undefined || this.renewalsSignalled.get(key) === at) return;
    this.renewalsSignalled.set(key, at);
    this.opts.onRenewalRequested?.(key);
  }

  /** A list delivers many changes at once: they are applied together, once. */
  private schedule(): void {
    if (this.pending || this.stopped) return;
    this.pending = setImmediate(() => {
      this.pending = undefined;
      this.applying = this.applying
        .then(() => this.apply())
        .catch((err: unknown) => {
          this.opts.logger.error({ err: (err as Error).message }, 'applying custom resources failed');
        });
    });
  }

  private async apply(): Promise<void> {
    if (this.stopped) return;
    const all = [...this.objects.values()];
    const at = (r: CustomResource) => `${r.kind} ${r.meta.namespace ? `${r.meta.namespace}/` : ''}${r.meta.name}`;
    const ctx = {
      baseDir: this.opts.parse.baseDir,
      clusterResourceNamespace: this.opts.parse.clusterResourceNamespace,
      namespacedSecretNames: true,
    };
    const issuerDocs: ResourceDocument[] = [];
    // An issuer whose spec does not parse is kept as an invalid one: it shows Ready=False
    // (InvalidSpec) in its status, and its Certificates wait for it instead of failing.
    const invalidIssuers = new Map<string, IssuerResource>();
    for (const r of all.filter((x) => x.kind !== 'Certificate')) {
      const doc = { doc: r.doc, at: at(r) };
      try {
        parseIssuanceResources([doc], ctx);
        issuerDocs.push(doc);
      } catch (err) {
        const message = (err as Error).message;
        if (this.invalidWarned.get(at(r)) !== message) {
          this.invalidWarned.set(at(r), message);
          this.opts.logger.warn({ resource: at(r), err: message }, 'invalid issuer; Certificates that use it wait until it is fixed');
        }
        const kind = r.kind === 'ClusterIssuer' ? 'ClusterIssuer' : 'Issuer';
        const namespace = kind === 'Issuer' ? r.meta.namespace : undefined;
        invalidIssuers.set(issuerId(kind, r.meta.name, namespace), {
          kind,
          name: r.meta.name,
          namespace,
          secretNamespace: namespace ?? this.opts.parse.clusterResourceNamespace,
          spec: { type: 'invalid', message },
          restrictions: undefined,
        });
      }
    }
    const certDocs: ResourceDocument[] = [];
    const secretNames = new Set<string>();
    const invalid: Array<{ r: CustomResource; message: string }> = [];
    for (const r of all.filter((x) => x.kind === 'Certificate').sort((a, b) => at(a).localeCompare(at(b)))) {
      const doc = { doc: r.doc, at: at(r) };
      try {
        const parsed = parseIssuanceResources([...issuerDocs, doc], { ...ctx, extraIssuers: invalidIssuers }).certificates[0]!;
        const key = `${parsed.namespace}/${parsed.spec.secretName}`;
        if (secretNames.has(key)) throw new Error(`spec.secretName: Secret ${key} is already written by another Certificate`);
        secretNames.add(key);
        certDocs.push(doc);
      } catch (err) {
        invalid.push({ r, message: (err as Error).message });
      }
    }
    const { issuers, certificates } = parseIssuanceResources([...issuerDocs, ...certDocs], { ...ctx, extraIssuers: invalidIssuers });
    for (const [id, issuer] of invalidIssuers) issuers.set(id, issuer);
    await this.opts.onResources({ issuers, certificates });
    for (const { r, message } of invalid) await this.reportInvalid(r, message);
  }

  private async reportInvalid(r: CustomResource, message: string): Promise<void> {
    const now = this.opts.now?.() ?? new Date();
    const before = r.status ?? emptyStatus();
    const next = withoutCondition(withCondition(before, 'Ready', 'False', 'InvalidSpec', message, now), 'Issuing');
    if (canonical(next) === canonical(before)) return; // already says so: no write, no event
    this.opts.logger.warn({ resource: `${r.meta.namespace}/${r.meta.name}`, err: message }, 'invalid Certificate; not issued until fixed');
    try {
      await writeCertificateStatus(this.opts.client(), r.meta.namespace, r.meta.name, next);
    } catch (err) {
      this.opts.logger.warn(
        { resource: `${r.meta.namespace}/${r.meta.name}`, err: (err as Error).message },
        'could not write the status of an invalid Certificate',
      );
    }
  }
}

function reduce(kind: Kind, o: Record<string, unknown>): CustomResource {
  const m = (o['metadata'] ?? {}) as Record<string, unknown>;
  const meta: ObjectMeta = metaOf(o);
  // Only what the config file's parser accepts: managedFields, uid and the like are the API server's.
  const metadata: Record<string, unknown> = { name: meta.name };
  if (kind !== 'ClusterIssuer') metadata['namespace'] = meta.namespace;
  if (m['labels']) metadata['labels'] = m['labels'];
  if (m['annotations']) metadata['annotations'] = m['annotations'];
  // Written by us, but read back from the API server: checked, not trusted.
  const status = certificateStatus.safeParse(o['status']);
  return {
    meta,
    kind,
    doc: { apiVersion: API_VERSION, kind, metadata, spec: o['spec'] ?? {} },
    status: status.success ? status.data : undefined,
  };
}

/** JSON with sorted keys: the API server returns a status with its keys in another order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x,
  );
}
