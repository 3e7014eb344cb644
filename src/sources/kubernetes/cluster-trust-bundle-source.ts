import { clusterTrustBundleName, clusterTrustBundleSignerName } from '../../kubernetes/gateway-api-names.js';
import type { DesiredSecret } from './desired-secret.js';
import type { SourceContext, SourceExtension } from './kubernetes-source.js';
import { metaOf, ResourceInformer, type ObjectMeta } from '../../kubernetes/resource-informer.js';

const API_VERSION = 'certificates.k8s.io/v1';
const ABSENT: DesiredSecret = { state: 'absent' };
/** Labels of one bundle that give names (the API server caps labels anyway; this caps names). */
const MAX_LABELS = 32;

export interface ClusterTrustBundleObject {
  meta: ObjectMeta;
  signerName: string;
  labels: Array<[string, string]>;
  trustBundle: string;
}

export function reduceClusterTrustBundle(raw: Record<string, unknown>): ClusterTrustBundleObject {
  const spec = (typeof raw['spec'] === 'object' && raw['spec'] !== null ? raw['spec'] : {}) as Record<string, unknown>;
  const m = (typeof raw['metadata'] === 'object' && raw['metadata'] !== null ? raw['metadata'] : {}) as Record<string, unknown>;
  const labels = (typeof m['labels'] === 'object' && m['labels'] !== null ? m['labels'] : {}) as Record<string, unknown>;
  return {
    meta: metaOf(raw),
    signerName: typeof spec['signerName'] === 'string' ? spec['signerName'] : '',
    labels: Object.entries(labels)
      .filter((e): e is [string, string] => typeof e[1] === 'string')
      .slice(0, MAX_LABELS),
    trustBundle: typeof spec['trustBundle'] === 'string' ? spec['trustBundle'] : '',
  };
}

/**
 * ClusterTrustBundles (certificates.k8s.io/v1, cluster-scoped) -> validation contexts:
 * - `clustertrustbundle://<name>`: one bundle;
 * - `clustertrustbundle-signer://<signer>`: every bundle of the signer, concatenated in
 *   name order (as the kubelet's projection does), and `...?<label>=<value>` for each
 *   label a bundle of that signer carries: the bundles of the signer with that label.
 * A bundle is public trust material: the authorizer lets every ServiceAccount read it.
 */
export class ClusterTrustBundleSource implements SourceExtension {
  private readonly informer: ResourceInformer<ClusterTrustBundleObject>;
  private readonly bundles = new Map<string, ClusterTrustBundleObject>();

  constructor(private readonly ctx: SourceContext) {
    this.informer = new ResourceInformer<ClusterTrustBundleObject>({
      ...ctx.informerOptions,
      resource: 'clustertrustbundles',
      path: `/apis/${API_VERSION}/clustertrustbundles`,
      reduce: reduceClusterTrustBundle,
      onChange: (key, obj) => this.changed(key, obj),
      logger: ctx.logger.child({ scope: 'cluster' }),
      onRestart: (reason) => ctx.onWatchRestart?.('clustertrustbundles', reason),
    });
  }

  informers(): ReturnType<SourceExtension['informers']> {
    return [{ resource: 'clustertrustbundles', scope: '', informer: this.informer }];
  }

  private changed(key: string, bundle: ClusterTrustBundleObject | undefined): void {
    const before = this.bundles.get(key);
    if (bundle) this.bundles.set(key, bundle);
    else this.bundles.delete(key);
    const name = (bundle ?? before)?.meta.name;
    if (name) {
      this.ctx.apply(
        clusterTrustBundleName(name),
        bundle?.trustBundle
          ? { state: 'present', material: { kind: 'validation_context', trustedCa: bundle.trustBundle }, source: this.sourceOf(bundle) }
          : ABSENT,
      );
    }
    // Every signer name the old and the new state give, recomputed from all bundles.
    const names = new Map<string, { signer: string; label?: readonly [string, string] }>();
    for (const b of [before, bundle]) {
      if (!b?.signerName) continue;
      names.set(clusterTrustBundleSignerName(b.signerName), { signer: b.signerName });
      for (const label of b.labels) names.set(clusterTrustBundleSignerName(b.signerName, label), { signer: b.signerName, label });
    }
    for (const [sdsName, { signer, label }] of names) this.ctx.apply(sdsName, this.desiredForSigner(signer, label));
  }

  private desiredForSigner(signer: string, label: readonly [string, string] | undefined): DesiredSecret {
    const members = [...this.bundles.values()]
      .filter((b) => b.signerName === signer && b.trustBundle && (!label || b.labels.some(([k, v]) => k === label[0] && v === label[1])))
      .sort((a, b) => (a.meta.name < b.meta.name ? -1 : 1));
    const first = members[0];
    if (!first) return ABSENT;
    const trustedCa = members.map((b) => (b.trustBundle.endsWith('\n') ? b.trustBundle : `${b.trustBundle}\n`)).join('');
    return { state: 'present', material: { kind: 'validation_context', trustedCa }, source: this.sourceOf(first) };
  }

  private sourceOf(bundle: ClusterTrustBundleObject): { kind: 'ClusterTrustBundle'; apiVersion: string; meta: ObjectMeta } {
    return { kind: 'ClusterTrustBundle', apiVersion: API_VERSION, meta: bundle.meta };
  }
}
