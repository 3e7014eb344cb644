import type { Rejection } from './secret-store.js';

/** The last rejected update per name, bounded (the oldest name goes first). */
export class RejectionLog {
  private readonly last = new Map<string, Rejection>();

  constructor(private readonly maxNames = 10_000) {}

  record(r: Rejection): void {
    this.last.delete(r.name);
    this.last.set(r.name, r);
    if (this.last.size > this.maxNames) this.last.delete(this.last.keys().next().value!);
  }

  get(name: string): Rejection | undefined {
    return this.last.get(name);
  }

  /** As shown in /status, /secrets and `inspect`. */
  static toJSON(r: Rejection): { code: string; message: string; at: string; origin: string } {
    return { code: r.code, message: r.message, at: r.at.toISOString(), origin: `${r.origin.source}:${r.origin.ref}` };
  }
}
