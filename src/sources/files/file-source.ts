import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { FileSecretConfig } from '../../config/server-config.js';
import type { Logger } from '../../observability/logger.js';
import type { SecretMaterial } from '../../store/secret-material.js';
import type { SecretStore } from '../../store/secret-store.js';
import { readStable } from './read-stable.js';

export interface FileSourceOptions {
  store: SecretStore;
  logger: Logger;
  secrets: readonly FileSecretConfig[];
  /** How long files must stay unchanged before they are read as one version. */
  settleMs?: number;
  /** A full re-read at this interval catches what a directory watch can miss. */
  resyncMs?: number;
}

/**
 * Secrets bound to PEM files. Watches the directories (not the files), so atomic
 * renames and Kubernetes `..data` symlink swaps are seen. A file that disappears or
 * becomes unreadable is logged and the last good version keeps being served.
 */
export class FileSource {
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly settleMs: number;
  private readonly resyncMs: number;

  constructor(private readonly opts: FileSourceOptions) {
    this.settleMs = opts.settleMs ?? 100;
    this.resyncMs = opts.resyncMs ?? 30_000;
  }

  async start(): Promise<void> {
    await Promise.all(this.opts.secrets.map((s) => this.load(s)));
    this.armWatchers();
    this.resync = setInterval(() => {
      this.armWatchers();
      for (const s of this.opts.secrets) this.schedule(s);
    }, this.resyncMs);
    this.resync.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.resync) clearInterval(this.resync);
    for (const t of this.timers.values()) clearTimeout(t);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private armWatchers(): void {
    for (const dir of new Set(this.opts.secrets.flatMap((s) => paths(s).map((p) => dirname(p))))) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.onDirChange(dir));
        w.on('error', (err) => {
          this.opts.logger.warn({ dir, err: err.message }, 'directory watch failed; re-arming on the next resync');
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch (err) {
        this.opts.logger.warn({ dir, err: (err as Error).message }, 'cannot watch directory; relying on periodic resync');
      }
    }
  }

  private onDirChange(dir: string): void {
    for (const s of this.opts.secrets) {
      if (paths(s).some((p) => dirname(p) === dir)) this.schedule(s);
    }
  }

  private schedule(secret: FileSecretConfig): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(secret.name));
    this.timers.set(
      secret.name,
      setTimeout(() => {
        this.timers.delete(secret.name);
        void this.load(secret);
      }, this.settleMs),
    );
  }

  /** One load per secret at a time; a change during a load schedules another. */
  private load(secret: FileSecretConfig): Promise<void> {
    const running = this.inFlight.get(secret.name);
    if (running) {
      return running.then(() => this.schedule(secret));
    }
    const p = this.read(secret).finally(() => this.inFlight.delete(secret.name));
    this.inFlight.set(secret.name, p);
    return p;
  }

  private async read(secret: FileSecretConfig): Promise<void> {
    const files = paths(secret);
    let contents: Buffer[];
    try {
      contents = await readStable(files, this.settleMs);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.opts.logger.warn(
        { secret: secret.name, path: e.path, code: e.code, servedVersion: this.opts.store.get(secret.name)?.version ?? null },
        'cannot read secret file; the last good version stays',
      );
      return;
    }
    if (this.stopped) return;
    const origin = { source: 'file' as const, ref: files[0]! };
    // Validated off the event loop; awaited so that one load per secret runs at a time.
    await this.opts.store.offer(secret.name, material(secret, contents), origin);
  }
}

function paths(s: FileSecretConfig): string[] {
  return s.kind === 'tls_certificate' ? [s.certificateChainFile, s.privateKeyFile] : [s.trustedCaFile];
}

function material(s: FileSecretConfig, contents: Buffer[]): SecretMaterial {
  if (s.kind === 'tls_certificate') {
    return { kind: 'tls_certificate', certificateChain: contents[0]!.toString('utf8'), privateKey: contents[1]!.toString('utf8') };
  }
  return { kind: 'validation_context', trustedCa: contents[0]!.toString('utf8') };
}
