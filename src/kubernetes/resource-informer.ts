import type { KubeClient, WatchHandle } from './kube-client.js';
import { KubeApiError } from './kube-errors.js';
import type { Logger } from '../observability/logger.js';
import { Backoff } from './backoff.js';

/** The part of an object's metadata the informer needs. */
export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
}

/** Why a watch was started again (a bounded label set for metrics). */
export type RestartReason = 'gone' | 'error' | 'silent' | 'ended';

export interface InformerOptions<T extends { meta: ObjectMeta }> {
  client: KubeClient;
  /** For logs and metrics: "secrets", "configmaps". */
  resource: string;
  /** Collection path, e.g. /api/v1/secrets or /api/v1/namespaces/apps/secrets. */
  path: string;
  fieldSelector?: string;
  /** Keeps only what the source needs of an object: a cluster's Secrets can be large. */
  reduce: (obj: Record<string, unknown>) => T;
  /** Called for every change, synchronously, in order: the object, or undefined when it is gone. */
  onChange: (key: string, obj: T | undefined) => void;
  logger: Logger;
  silentMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  pageSize: number;
  onRestart?: (reason: RestartReason) => void;
}

export interface InformerHealth {
  /** A first full list has been applied. */
  synced: boolean;
  /** Since when list/watch has been failing; undefined while watching. */
  failingSince?: Date;
  lastError?: string;
}

/**
 * List, then watch from the list's resourceVersion, forever: what client-go's reflector
 * does, with the failure handling client-node's informer leaves to the caller.
 * - The watch ends (server timeout, API server restart): watch again from the last
 *   resourceVersion; the server replays what we missed.
 * - 410 Gone (our resourceVersion is older than the server keeps): list again, and turn
 *   the difference into changes (deletions included).
 * - Errors: back off with jitter, then watch again (list again after an API error).
 * - A silent watch (no event, bookmark or end for `silentMs`, e.g. a half-open TCP
 *   connection): abort it and watch again. Watches ask for bookmarks and a server-side
 *   timeout below `silentMs`, so a healthy quiet watch always ends or speaks in time.
 * The cache and the changes survive every restart: consumers keep the last state.
 */
export class ResourceInformer<T extends { meta: ObjectMeta }> {
  private readonly cache = new Map<string, T>();
  private resourceVersion = '';
  private stopped = false;
  private running: Promise<void> | undefined;
  private current: WatchHandle | undefined;
  private sleepTimer: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private readonly backoff: Backoff;
  private syncedOnce = false;
  private failingSince: Date | undefined;
  private lastError: string | undefined;
  private syncWaiters: Array<() => void> = [];

  constructor(private readonly opts: InformerOptions<T>) {
    this.backoff = new Backoff(opts.backoffInitialMs, opts.backoffMaxMs);
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort();
    if (this.sleepTimer) {
      clearTimeout(this.sleepTimer.timer);
      this.sleepTimer.wake();
    }
    // A list request in flight ends on its own deadline; its result is dropped (stopped).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  get size(): number {
    return this.cache.size;
  }

  health(): InformerHealth {
    return {
      synced: this.syncedOnce,
      ...(this.failingSince ? { failingSince: this.failingSince } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Resolves after the first full list has been applied. */
  whenSynced(): Promise<void> {
    if (this.syncedOnce) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.list();
          needList = false;
        }
        const outcome = await this.watchOnce();
        if (this.stopped) break;
        this.opts.onRestart?.(outcome.reason);
        if (outcome.reason === 'gone') {
          this.opts.logger.info({ resource: this.opts.resource }, 'watch resourceVersion expired (410 Gone): listing again');
          needList = true;
        } else if (outcome.reason === 'silent') {
          this.opts.logger.warn(
            { resource: this.opts.resource, silentMs: this.opts.silentMs },
            'watch silent for too long: starting it again',
          );
        } else if (outcome.lines === 0 && outcome.ms < 1000) {
          // A server that ends every watch at once would make this loop spin: slow it down.
          await this.sleep(this.backoff.next());
        }
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof KubeApiError && err.gone) {
          this.opts.onRestart?.('gone');
          needList = true;
          continue;
        }
        this.opts.onRestart?.('error');
        // After an API error (403, 500, "too large resource version") trust nothing: list
        // again. After a network error, the resourceVersion is still good.
        if (err instanceof KubeApiError) needList = true;
        this.failed(err);
        await this.sleep(this.backoff.next());
      }
    }
  }

  /**
   * Lists in pages, each streamed: an item is reduced as soon as it is parsed, and kept
   * only when it differs from the cached one (a re-list after 410 holds the changes and
   * the set of keys seen, not a second copy of everything).
   */
  private async list(): Promise<void> {
    const seen = new Set<string>();
    const changed = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    const onItem = (item: Record<string, unknown>): void => {
      const meta = metaOf(item);
      const key = keyOf(meta);
      seen.add(key);
      if (this.cache.get(key)?.meta.resourceVersion === meta.resourceVersion) return;
      changed.set(key, this.opts.reduce(item));
    };
    for (;;) {
      let page: { metadata?: { resourceVersion?: string; continue?: string } };
      try {
        page = await this.opts.client.list(
          this.opts.path,
          { limit: this.opts.pageSize, continue: cont, fieldSelector: this.opts.fieldSelector },
          onItem,
        );
      } catch (err) {
        // The continue token expired mid-list: start the list over.
        if (cont && err instanceof KubeApiError && err.gone) {
          seen.clear();
          changed.clear();
          cont = undefined;
          continue;
        }
        throw err;
      }
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue || undefined;
      if (!cont) break;
    }
    if (this.stopped) return;

    // Apply the difference, so consumers see deletions that happened while we were away.
    for (const [key] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.opts.onChange(key, undefined);
      }
    }
    for (const [key, obj] of changed) {
      this.cache.set(key, obj);
      this.opts.onChange(key, obj);
    }
    this.resourceVersion = rv;
    this.healthy();
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      this.opts.logger.info({ resource: this.opts.resource, objects: this.cache.size }, 'initial list applied');
      for (const w of this.syncWaiters) w();
      this.syncWaiters = [];
    }
  }

  private async watchOnce(): Promise<{ reason: RestartReason; lines: number; ms: number }> {
    const started = Date.now();
    // The server ends the watch before our silence timer would fire; jitter spreads the
    // restarts of many watches.
    const serverTimeoutS = Math.max(1, Math.floor((this.opts.silentMs / 1000) * (0.5 + Math.random() * 0.25)));
    let lines = 0;
    let reason: RestartReason = 'ended';
    let apiError: KubeApiError | undefined;
    let silenceTimer: NodeJS.Timeout | undefined;
    let handle: WatchHandle | undefined;
    let abortWanted = false;
    const abort = (): void => {
      abortWanted = true;
      handle?.abort();
    };
    const armSilence = (): void => {
      clearTimeout(silenceTimer);
      silenceTimer = setTimeout(() => {
        reason = 'silent';
        abort();
      }, this.opts.silentMs);
    };
    handle = await this.opts.client.watch(
      this.opts.path,
      {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: serverTimeoutS,
        fieldSelector: this.opts.fieldSelector,
      },
      (ev) => {
        if (abortWanted) return;
        lines++;
        armSilence();
        if (ev.type === 'ERROR') {
          const s = ev.object;
          const code = typeof s['code'] === 'number' ? s['code'] : 500;
          const err = new KubeApiError(
            code,
            typeof s['reason'] === 'string' ? s['reason'] : '',
            typeof s['message'] === 'string' ? s['message'] : 'watch error',
          );
          if (err.gone) reason = 'gone';
          else apiError = err;
          abort();
          return;
        }
        const meta = metaOf(ev.object);
        if (meta.resourceVersion) this.resourceVersion = meta.resourceVersion;
        if (ev.type === 'BOOKMARK') return;
        const key = keyOf(meta);
        if (ev.type === 'DELETED') {
          if (this.cache.delete(key)) this.opts.onChange(key, undefined);
          return;
        }
        const obj = this.opts.reduce(ev.object);
        this.cache.set(key, obj);
        this.opts.onChange(key, obj);
      },
    );
    if (abortWanted || this.stopped) handle.abort();
    this.current = handle;
    // The watch is open: the API server is back, whatever happened before.
    this.healthy();
    armSilence();
    try {
      await handle.done;
    } finally {
      clearTimeout(silenceTimer);
      this.current = undefined;
    }
    if (apiError) throw apiError;
    if (reason === 'ended' && lines > 0) this.backoff.reset();
    return { reason, lines, ms: Date.now() - started };
  }

  private healthy(): void {
    if (this.failingSince) {
      this.opts.logger.info({ resource: this.opts.resource, since: this.failingSince.toISOString() }, 'Kubernetes API reachable again');
    }
    this.failingSince = undefined;
    this.lastError = undefined;
    this.backoff.reset();
  }

  private failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (!this.failingSince) {
      this.failingSince = new Date();
      this.opts.logger.warn({ resource: this.opts.resource, err: message }, 'Kubernetes list/watch failing: serving the last known state');
    } else if (message !== this.lastError) {
      this.opts.logger.warn({ resource: this.opts.resource, err: message }, 'Kubernetes list/watch still failing');
    }
    this.lastError = message;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleepTimer = undefined;
        resolve();
      }, ms);
      this.sleepTimer = { timer, wake: resolve };
    });
  }
}

export function metaOf(obj: Record<string, unknown>): ObjectMeta {
  const m = (obj['metadata'] ?? {}) as Record<string, unknown>;
  const s = (k: string): string => (typeof m[k] === 'string' ? m[k] : '');
  return { name: s('name'), namespace: s('namespace'), uid: s('uid'), resourceVersion: s('resourceVersion') };
}

export function keyOf(meta: { namespace: string; name: string }): string {
  return `${meta.namespace}/${meta.name}`;
}
