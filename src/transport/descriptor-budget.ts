import { readdirSync, readFileSync } from 'node:fs';

/**
 * How many connections the listeners may hold so that `reserved` descriptors stay free
 * for the sources (files, watches, the Kubernetes client): the process's soft limit on
 * open files, less what is open now, less the reserve. Undefined where /proc does not
 * tell (not Linux) or the limit is unlimited: then nothing is capped.
 */
export function connectionBudget(reserved: number): number | undefined {
  let limitsText: string;
  let open: number;
  try {
    limitsText = readFileSync('/proc/self/limits', 'utf8');
    open = readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limitsText);
  if (!m || m[1] === 'unlimited') return undefined;
  return Math.max(1, Number(m[1]) - open - reserved);
}
