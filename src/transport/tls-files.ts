import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsListenerConfig } from '../config/server-config.js';
import type { Logger } from '../observability/logger.js';

/** The listener's certificate, key and client CA, read from their files. */
export function readTlsFiles(tls: TlsListenerConfig): SecureContextOptions {
  const options: SecureContextOptions = { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  if (tls.clientCaFile) options.ca = readFileSync(tls.clientCaFile);
  return options;
}

/**
 * Watches the listener's TLS files and hands a new context to `apply` when they change:
 * new connections get the new certificate, open ones keep theirs. The directories are
 * watched (files are usually replaced by rename, and Kubernetes swaps a symlink), and a
 * burst of changes is read once. A pair that does not load (a key written before its
 * certificate) is skipped: the next change tries again, and the old context stays.
 */
export class TlsFileWatcher {
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tls: TlsListenerConfig,
    private readonly apply: (options: SecureContextOptions) => void,
    private readonly logger: Logger,
    private readonly settleMs = 100,
  ) {}

  start(): void {
    const files = [this.tls.certFile, this.tls.keyFile, ...(this.tls.clientCaFile ? [this.tls.clientCaFile] : [])];
    const dirs = new Map<string, Set<string>>();
    for (const f of files) {
      const names = dirs.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      dirs.set(dirname(f), names);
    }
    for (const [dir, names] of dirs) {
      const w = watch(dir, (_event, name) => {
        // Kubernetes mounts change through a `..data` symlink swap: any name may matter.
        if (name === null || names.has(name) || name.startsWith('..')) this.schedule();
      });
      w.on('error', (err) => this.logger.warn({ dir, err: err.message }, 'cannot watch TLS files'));
      this.watchers.push(w);
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), this.settleMs);
    this.timer.unref();
  }

  private reload(): void {
    let options: SecureContextOptions;
    try {
      options = readTlsFiles(this.tls);
      createSecureContext(options); // throws on a key that does not match, before applying
    } catch (err) {
      // The message names the failing step, never key material.
      this.logger.warn(
        { err: (err as NodeJS.ErrnoException).code ?? 'invalid' },
        'TLS files changed but do not load; keeping the previous ones',
      );
      return;
    }
    this.apply(options);
    this.logger.info({ certFile: this.tls.certFile }, 'SDS listener TLS files reloaded');
  }
}
