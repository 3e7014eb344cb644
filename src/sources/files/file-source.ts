import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { FileSecretConfig } from '../../config/server-config.js';
import type { Logger } from '../../observability/logger.js';
import type { SecretMaterial } from '../../store/secret-material.js';
import type { SecretStore } from '../../store/secret-store.js';
import { fileFingerprint } from './file-fingerprint.js';
import { codeOf, isTransient } from './file-read-error.js';
import { readSecretFile } from './read-secret-file.js';
import { ReadSlots } from './read-slots.js';
import { readStable } from './read-stable.js';

export interface FileSourceOptions {
  store: SecretStore;
  logger: Logger;
  secrets: readonly FileSecretConfig[];
  /** How long files must stay unchanged before they are read as one version. */
  settleMs?: number;
  /** A full re-read at this interval catches what a directory watch can miss. */
  resyncMs?: number;
  /** Largest file read (limits.maxSecretBytes); a larger one is refused unread. */
  maxFileBytes?: number;
  /** A single file read still running after this long is abandoned (limits.fileReadTimeoutMs). */
  readTimeoutMs?: number;
  /** Reads in flight at once (below libuv's thread pool of 4). */
  concurrentReads?: number;
}

/** A transient failure (out of descriptors, a read past its deadline) is retried after this, doubling. */
const RETRY_INITIAL_MS = 250;
const RETRY_MAX_MS = 10_000;

/**
 * Secrets bound to PEM files. Watches the directories (not the files), so atomic
 * renames and Kubernetes `..data` symlink swaps are seen. A file that disappears, is
 * unreadable, is not a regular file or is too large is logged with a stable code and the
 * last good version keeps being served; nothing a file holds can end the process.
 */
export class FileSource {
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Secrets whose last read failed transiently: name -> next retry delay. */
  private readonly retryDelay = new Map<string, number>();
  /** Fingerprint of each secret's files taken before its last successful read. */
  private readonly fingerprints = new Map<string, string>();
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly slots: ReadSlots;
  private readonly settleMs: number;
  private readonly resyncMs: number;

  constructor(private readonly opts: FileSourceOptions) {
    this.settleMs = opts.settleMs ?? 100;
    this.resyncMs = opts.resyncMs ?? 30_000;
    this.slots = new ReadSlots(opts.concurrentReads ?? 2);
  }

  async start(): Promise<void> {
    await Promise.all(this.opts.secrets.map((s) => this.load(s)));
    this.armWatchers();
    this.resync = setInterval(() => {
      this.armWatchers();
      // A resync re-reads only what changed since it was read (a watch may have missed it).
      for (const s of this.opts.secrets) if (!this.timers.has(s.name)) void this.resyncOne(s);
    }, this.resyncMs);
    this.resync.unref();
  }

  /** Stops watching and aborts reads in flight (their descriptors close as they return). */
  stop(): void {
    this.stopped = true;
    this.abort.abort();
    if (this.resync) clearInterval(this.resync);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
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

  private async resyncOne(secret: FileSecretConfig): Promise<void> {
    if (this.stopped || this.inFlight.has(secret.name)) return;
    const known = this.fingerprints.get(secret.name);
    const now = known === undefined ? undefined : await this.slots.run(() => fileFingerprint(paths(secret)));
    if (now === undefined || now !== known) this.schedule(secret);
  }

  private schedule(secret: FileSecretConfig, delayMs = this.settleMs): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(secret.name));
    const t = setTimeout(() => {
      this.timers.delete(secret.name);
      void this.load(secret);
    }, delayMs);
    this.timers.set(secret.name, t);
  }

  /** One load per secret at a time; a change during a load schedules another. Never rejects. */
  private load(secret: FileSecretConfig): Promise<void> {
    const running = this.inFlight.get(secret.name);
    if (running) {
      return running.then(() => this.schedule(secret));
    }
    const p = this.read(secret)
      .catch((err: unknown) => {
        // Anything unforeseen still ends here: logged, the last good version stays.
        this.opts.logger.error(
          { secret: secret.name, err: (err as Error)?.message },
          'secret file load failed; the last good version stays',
        );
      })
      .finally(() => this.inFlight.delete(secret.name));
    this.inFlight.set(secret.name, p);
    return p;
  }

  private async read(secret: FileSecretConfig): Promise<void> {
    const files = paths(secret);
    // Taken before reading: a change after it makes the next resync read again.
    const fingerprint = await this.slots.run(() => fileFingerprint(files));
    let contents: Buffer[];
    try {
      const limits = {
        maxBytes: this.opts.maxFileBytes ?? 256 * 1024,
        deadlineMs: this.opts.readTimeoutMs ?? 5000,
        signal: this.abort.signal,
      };
      contents = await readStable(files, this.settleMs, (p) => this.slots.run(() => readSecretFile(p, limits)));
    } catch (err) {
      if (this.stopped) return;
      const code = codeOf(err);
      const transient = isTransient(code);
      this.opts.logger.warn(
        {
          secret: secret.name,
          path: (err as { path?: string }).path,
          code,
          reason: (err as Error).message,
          servedVersion: this.opts.store.get(secret.name)?.version ?? null,
          ...(transient ? { retryInMs: this.nextRetry(secret.name) } : {}),
        },
        'cannot read secret file; the last good version stays',
      );
      // Out of descriptors or past the deadline: read again later, so no rotation is lost.
      if (transient) this.schedule(secret, this.retryDelay.get(secret.name));
      return;
    }
    this.retryDelay.delete(secret.name);
    if (this.stopped) return;
    const origin = { source: 'file' as const, ref: files[0]! };
    // Validated off the event loop; awaited so that one load per secret runs at a time.
    await this.opts.store.offer(secret.name, material(secret, contents), origin);
    // Only a version that reached the store's door is a reason to skip the next resync.
    if (fingerprint === undefined) this.fingerprints.delete(secret.name);
    else this.fingerprints.set(secret.name, fingerprint);
  }

  /** The delay before the next retry of a transient failure, doubling to a cap. */
  private nextRetry(name: string): number {
    const previous = this.retryDelay.get(name);
    const next = previous === undefined ? RETRY_INITIAL_MS : Math.min(previous * 2, RETRY_MAX_MS);
    this.retryDelay.set(name, next);
    return next;
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
