/**
 * Runs tasks one at a time, in order. A synchronous task on an idle queue runs at once
 * (no promise, no tick): that is the per-push fast path.
 */
export class SerialQueue {
  private tail: Promise<void> | undefined;

  constructor(private readonly onError: (err: unknown) => void) {}

  run(task: () => void | Promise<void>): void {
    if (this.tail) {
      this.tail = this.tail.then(task).catch(this.onError);
      return;
    }
    let result: void | Promise<void>;
    try {
      result = task();
    } catch (err) {
      this.onError(err);
      return;
    }
    if (result instanceof Promise) {
      const p: Promise<void> = result.catch(this.onError).finally(() => {
        if (this.tail === p) this.tail = undefined;
      });
      this.tail = p;
    }
  }
}
