// Polling an ACME resource until it leaves a pending state: first after `intervalMs`,
// doubling up to `maxIntervalMs`, for at most `timeoutMs`, and stopping at once when the
// engine stops (the abort signal).

import { setTimeout as sleep } from 'node:timers/promises';

export interface PollSettings {
  pollIntervalMs: number;
  maxPollIntervalMs: number;
  timeoutMs: number;
}

/** Calls `check` until it returns a value; `what` names the resource in a timeout error. */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  settings: PollSettings,
  signal: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + settings.timeoutMs;
  let interval = settings.pollIntervalMs;
  for (;;) {
    signal.throwIfAborted();
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() + interval > deadline) throw new Error(`${what} still pending after ${Math.round(settings.timeoutMs / 1000)} s`);
    await sleep(interval, undefined, { signal });
    interval = Math.min(interval * 2, settings.maxPollIntervalMs);
  }
}
