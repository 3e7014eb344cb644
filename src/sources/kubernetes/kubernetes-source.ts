import type { KubeClient } from '../../kubernetes/kube-client.js';
import type { KubernetesConfig } from '../../config/kubernetes-config.js';
import { CACERT_SUFFIX, configMapName, parseKubernetesName, secretName } from '../../kubernetes/kubernetes-names.js';
import type { Readiness } from '../../observability/http-server.js';
import type { Logger } from '../../observability/logger.js';
import type { SecretStore } from '../../store/secret-store.js';
import type { SecretOrigin } from '../../store/secret-material.js';
import { caFromConfigMap, desiredForSecretName, type DesiredSecret, type SourceObject } from './desired-secret.js';
import { configMapReducer, reduceSecret, SKIPPED_SECRET_TYPES, type ConfigMapObject, type SecretObject } from './kube-objects.js';
import type { RejectionEvents } from './rejection-events.js';
import { ResourceInformer, type RestartReason } from '../../kubernetes/resource-informer.js';

export interface KubernetesSourceOptions {
  client: KubeClient;
  store: SecretStore;
  config: KubernetesConfig;
  logger: Logger;
  /** Undefined: rejections are only logged. */
  events?: RejectionEvents;
  onWatchRestart?: (resource: string, reason: RestartReason) => void;
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
    const each = (resource: string, scope: string, inf: ResourceInformer<SecretObject> | ResourceInformer<ConfigMapObject>): void => {
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
    return { ready, reasons };
  }

  /** True while every informer is watching (for a metric). */
  reachable(): boolean {
    return this.informers().every((inf) => inf.health().failingSince === undefined);
  }

  private informers(): Array<ResourceInformer<SecretObject> | ResourceInformer<ConfigMapObject>> {
    return [...this.secrets.values(), ...this.configMaps.values()];
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
  }

  private configMapChanged(key: string): void {
    const [ns, name] = splitKey(key);
    const inf = this.configMaps.get(ns) ?? this.configMaps.get('');
    this.apply(configMapName(ns, name), caFromConfigMap(inf?.get(key), this.opts.config.configMapKeys));
  }

  private apply(name: string, desired: DesiredSecret): void {
    const { store, logger } = this.opts;
    if (desired.state === 'absent') {
      this.reported.delete(name);
      const current = store.get(name);
      if (current?.origin.source === 'kubernetes') store.delete(name, current.origin);
      return;
    }
    const { source } = desired;
    const ref = `${source.meta.namespace}/${source.meta.name}`;
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

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
