import type { KubeClient } from '../../kubernetes/kube-client.js';
import type { KubernetesConfig } from '../../config/kubernetes-config.js';
import { CACERT_SUFFIX, configMapName, parseKubernetesName, secretName } from '../../kubernetes/kubernetes-names.js';
import { sidecarAliases } from '../../kubernetes/sidecar-names.js';
import type { Readiness } from '../../observability/http-server.js';
import type { Logger } from '../../observability/logger.js';
import type { SecretStore } from '../../store/secret-store.js';
import type { SecretOrigin } from '../../store/secret-material.js';
import { caFromConfigMap, desiredForSecretName, type DesiredSecret, type SourceObject } from './desired-secret.js';
import { configMapReducer, reduceSecret, SKIPPED_SECRET_TYPES, type ConfigMapObject, type SecretObject } from './kube-objects.js';
import type { RejectionEvents } from './rejection-events.js';
import { ResourceInformer, type InformerOptions, type ObjectMeta, type RestartReason } from '../../kubernetes/resource-informer.js';

export interface KubernetesSourceOptions {
  client: KubeClient;
  /** The store, or what stands before it (bundle holds). */
  store: Pick<SecretStore, 'get' | 'offer' | 'delete'>;
  config: KubernetesConfig;
  logger: Logger;
  /** Undefined: rejections are only logged. */
  events?: RejectionEvents;
  onWatchRestart?: (resource: string, reason: RestartReason) => void;
  /** Sidecar mode: `kubernetes://` names are served as `sds://` names too (sidecar-names.ts). */
  sidecarNamespace?: string;
  /** More objects that give names (Gateway API, ClusterTrustBundles), built with the source. */
  extensions?: ReadonlyArray<(ctx: SourceContext) => SourceExtension>;
}

/** The options every informer of the source shares. */
export type CommonInformerOptions = Pick<
  InformerOptions<{ meta: ObjectMeta }>,
  'client' | 'silentMs' | 'backoffInitialMs' | 'backoffMaxMs' | 'pageSize'
>;

/** What an extension of the source may use: the watched Secrets and ConfigMaps, and the store's door. */
export interface SourceContext {
  informerOptions: CommonInformerOptions;
  /** '' is the cluster-wide scope. */
  scopes: readonly string[];
  config: KubernetesConfig;
  logger: Logger;
  onWatchRestart?: (resource: string, reason: RestartReason) => void;
  lookupSecret(namespace: string, name: string): SecretObject | undefined;
  lookupConfigMap(namespace: string, name: string): ConfigMapObject | undefined;
  /** Puts, rejects (Event, last good kept) or removes a name, as for Secrets and ConfigMaps. */
  apply(name: string, desired: DesiredSecret): void;
}

/** An informer as the source runs it, whatever it holds. */
export type RunningInformer = Pick<ResourceInformer<{ meta: ObjectMeta }>, 'start' | 'stop' | 'whenSynced' | 'health'>;

export interface SourceExtension {
  /** Its informers, for start, stop, readiness: resource name and scope ('' cluster-wide). */
  informers(): ReadonlyArray<{ resource: string; scope: string; informer: RunningInformer }>;
  secretChanged?(namespace: string, name: string): void;
  configMapChanged?(namespace: string, name: string): void;
}

/**
 * Secrets and ConfigMaps -> the store, under the Kubernetes names (kubernetes-names.ts).
 * One informer per resource and namespace (or one cluster-wide). Every change to an
 * object recomputes each name that depends on it; the store decides whether that is a
 * new version (pushed), the same content (nothing), or invalid (rejected, last good
 * kept, and an Event on the object).
 */
export class KubernetesSource {
  private readonly secrets = new Map<string, ResourceInformer<SecretObject>>();
  private readonly configMaps = new Map<string, ResourceInformer<ConfigMapObject>>();
  /** name -> the rejection last reported, so a re-list or resync does not repeat it. */
  private readonly reported = new Map<string, string>();
  private readonly extensions: SourceExtension[];

  constructor(private readonly opts: KubernetesSourceOptions) {
    const { config } = opts;
    // '' is the cluster-wide scope.
    const scopes = config.namespaces.length > 0 ? config.namespaces : [''];
    const common = {
      client: opts.client,
      silentMs: config.watch.silentMs,
      backoffInitialMs: config.watch.backoffInitialMs,
      backoffMaxMs: config.watch.backoffMaxMs,
      pageSize: config.watch.pageSize,
    };
    for (const ns of scopes) {
      const prefix = ns ? `/api/v1/namespaces/${ns}` : '/api/v1';
      this.secrets.set(
        ns,
        new ResourceInformer<SecretObject>({
          ...common,
          resource: 'secrets',
          path: `${prefix}/secrets`,
          fieldSelector: SKIPPED_SECRET_TYPES.map((t) => `type!=${t}`).join(','),
          reduce: reduceSecret,
          onChange: (key) => this.secretChanged(key),
          logger: opts.logger.child({ scope: ns || 'cluster' }),
          onRestart: (reason) => opts.onWatchRestart?.('secrets', reason),
        }),
      );
      this.configMaps.set(
        ns,
        new ResourceInformer<ConfigMapObject>({
          ...common,
          resource: 'configmaps',
          path: `${prefix}/configmaps`,
          reduce: configMapReducer(config.configMapKeys),
          onChange: (key) => this.configMapChanged(key),
          logger: opts.logger.child({ scope: ns || 'cluster' }),
          onRestart: (reason) => opts.onWatchRestart?.('configmaps', reason),
        }),
      );
    }
    const ctx: SourceContext = {
      informerOptions: common,
      scopes,
      config,
      logger: opts.logger,
      ...(opts.onWatchRestart ? { onWatchRestart: opts.onWatchRestart } : {}),
      lookupSecret: this.lookupSecret,
      lookupConfigMap: (namespace, name) => (this.configMaps.get(namespace) ?? this.configMaps.get(''))?.get(`${namespace}/${name}`),
      apply: (name, desired) => this.apply(name, desired),
    };
    this.extensions = (opts.extensions ?? []).map((make) => make(ctx));
  }

  start(): void {
    for (const inf of this.informers()) inf.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((inf) => inf.stop()));
  }

  /** Resolves once every informer has applied its first list. */
  async whenSynced(): Promise<void> {
    await Promise.all(this.informers().map((inf) => inf.whenSynced()));
  }

  /**
   * Not ready until every informer has listed once. Afterwards an unreachable API server
   * only degrades: the last known state keeps being served.
   */
  readiness(): Readiness {
    let ready = true;
    const reasons: string[] = [];
    const each = (resource: string, scope: string, inf: RunningInformer): void => {
      const h = inf.health();
      const where = `${resource} ${scope ? `in ${scope}` : 'cluster-wide'}`;
      if (!h.synced) {
        ready = false;
        reasons.push(`${where}: waiting for the first list${h.lastError ? ` (${h.lastError})` : ''}`);
      } else if (h.failingSince) {
        reasons.push(`${where}: Kubernetes API unreachable since ${h.failingSince.toISOString()}, serving the last known state`);
      }
    };
    for (const [ns, inf] of this.secrets) each('secrets', ns, inf);
    for (const [ns, inf] of this.configMaps) each('configmaps', ns, inf);
    for (const ext of this.extensions) for (const i of ext.informers()) each(i.resource, i.scope, i.informer);
    return { ready, reasons };
  }

  /** True while every informer is watching (for a metric). */
  reachable(): boolean {
    return this.informers().every((inf) => inf.health().failingSince === undefined);
  }

  private informers(): RunningInformer[] {
    return [...this.secrets.values(), ...this.configMaps.values(), ...this.extensions.flatMap((e) => e.informers().map((i) => i.informer))];
  }

  private lookupSecret = (namespace: string, name: string): SecretObject | undefined =>
    (this.secrets.get(namespace) ?? this.secrets.get(''))?.get(`${namespace}/${name}`);

  private secretChanged(key: string): void {
    const [ns, name] = splitKey(key);
    // Secret X feeds X (certificate) and X-cacert (its ca.crt); Secret X-cacert feeds
    // X-cacert, which takes precedence over X's ca.crt. Recompute both either way.
    for (const sdsName of new Set([secretName(ns, name), secretName(ns, `${name}${CACERT_SUFFIX}`)])) {
      const parsed = parseKubernetesName(sdsName);
      if (parsed?.scheme !== 'kubernetes') continue;
      this.apply(sdsName, desiredForSecretName(parsed, this.lookupSecret));
    }
    for (const ext of this.extensions) ext.secretChanged?.(ns, name);
  }

  private configMapChanged(key: string): void {
    const [ns, name] = splitKey(key);
    const inf = this.configMaps.get(ns) ?? this.configMaps.get('');
    this.apply(configMapName(ns, name), caFromConfigMap(inf?.get(key), this.opts.config.configMapKeys));
    for (const ext of this.extensions) ext.configMapChanged?.(ns, name);
  }

  private apply(name: string, desired: DesiredSecret): void {
    this.applyOne(name, desired);
    const ns = this.opts.sidecarNamespace;
    if (ns === undefined) return;
    // The same content under Istio's sds:// names; rejections are reported under `name` only.
    for (const alias of sidecarAliases(name, ns)) {
      if (desired.state === 'present')
        void this.opts.store.offer(alias, desired.material, { source: 'kubernetes', ref: refOf(desired.source) });
      else if (desired.state === 'absent') {
        const current = this.opts.store.get(alias);
        if (current?.origin.source === 'kubernetes') this.opts.store.delete(alias, current.origin);
      }
    }
  }

  private applyOne(name: string, desired: DesiredSecret): void {
    const { store, logger } = this.opts;
    if (desired.state === 'absent') {
      this.reported.delete(name);
      const current = store.get(name);
      if (current?.origin.source === 'kubernetes') store.delete(name, current.origin);
      return;
    }
    const { source } = desired;
    const ref = refOf(source);
    if (desired.state === 'invalid') {
      const served = store.get(name)?.version;
      logger.warn(
        { secret: name, object: `${source.kind} ${ref}`, code: desired.code, err: desired.message, servedVersion: served ?? null },
        'Kubernetes object rejected; the last good version stays',
      );
      this.reportOnce(name, desired.source, desired.code, desired.message, served);
      return;
    }
    const origin: SecretOrigin = { source: 'kubernetes', ref };
    // Validated off the event loop; a newer state of the name supersedes this one.
    void store.offer(name, desired.material, origin).then((result) => {
      if (result.outcome === 'rejected') {
        // The store has logged it (code, served version); the Event tells the object's owner.
        this.reportOnce(name, source, result.code, result.error.message, result.current?.version);
      } else if (result.outcome !== 'superseded') {
        this.reported.delete(name);
      }
    });
  }

  private reportOnce(name: string, source: SourceObject, code: string, detail: string, servedVersion: string | undefined): void {
    const key = `${source.meta.uid}/${source.meta.resourceVersion}/${code}`;
    if (this.reported.get(name) === key) return;
    this.reported.set(name, key);
    this.opts.events?.report(source, { name, code, detail, servedVersion });
  }
}

function refOf(source: SourceObject): string {
  return source.meta.namespace ? `${source.meta.namespace}/${source.meta.name}` : source.meta.name;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
