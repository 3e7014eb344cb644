import type { SecretStore } from '../store/secret-store.js';

/** A stream as the fan-out sees it: told that a name it watches changed or went away. */
export interface SecretWatcher {
  secretChanged(name: string): void;
}

/** The streams watching one name, and the store watch they share. */
interface Watched {
  stop: () => void;
  /** The usual case is one stream per name (Envoy opens a stream per secret): no set for it. */
  one: SecretWatcher | undefined;
  many: Set<SecretWatcher> | undefined;
}

/**
 * One store watch per name, shared by every stream subscribed to it: a stream keeps no
 * closure, unwatch function or map per name, only its place in the name's entry here.
 * Streams are told synchronously, in the store's notification, as a watch of their own
 * would be.
 */
export class SecretFanout {
  private readonly names = new Map<string, Watched>();
  private readonly notify = (name: string): void => {
    const w = this.names.get(name);
    if (!w) return;
    if (w.one) w.one.secretChanged(name);
    if (w.many) for (const s of w.many) s.secretChanged(name);
  };

  constructor(private readonly store: Pick<SecretStore, 'watch'>) {}

  /** Starts telling `stream` about `name` (once, however often it is added). */
  add(name: string, stream: SecretWatcher): void {
    let w = this.names.get(name);
    if (!w) {
      w = { stop: this.store.watch(name, this.notify), one: stream, many: undefined };
      this.names.set(name, w);
      return;
    }
    if (w.one === stream || w.many?.has(stream)) return;
    if (!w.one) w.one = stream;
    else (w.many ??= new Set()).add(stream);
  }

  /** Stops telling `stream` about `name`; the store watch ends with the last stream. */
  remove(name: string, stream: SecretWatcher): void {
    const w = this.names.get(name);
    if (!w) return;
    if (w.one === stream) w.one = undefined;
    else w.many?.delete(stream);
    if (w.one || (w.many && w.many.size > 0)) return;
    w.stop();
    this.names.delete(name);
  }

  /** Streams watching a name (for tests and status). */
  count(name: string): number {
    const w = this.names.get(name);
    return w ? (w.one ? 1 : 0) + (w.many?.size ?? 0) : 0;
  }
}
