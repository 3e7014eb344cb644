import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * The nice value validation threads run at. Validation is batch work with a deadline of
 * seconds; the event loop serves every stream and its GC's helper threads keep its pauses
 * short. On a busy core (the load of a rollover), nice 10 gives a validation thread about
 * a tenth of what a nice-0 thread gets, so the event loop and its GC win; on an idle core
 * it runs at full speed.
 */
export const VALIDATION_NICE = 10;

/**
 * Lowers the calling thread's CPU priority to `nice` (never raises it: a process
 * started with a higher nice value keeps it). Linux gives each thread its own nice value
 * and /proc/thread-self names the thread; elsewhere, or where /proc is not mounted, this
 * does nothing and returns false.
 */
export function lowerThisThreadPriority(nice: number): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    if (getPriority(tid) < nice) setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
