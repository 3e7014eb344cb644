// After a failed issuance the next attempt waits initial * 2^(failures - 1), capped:
// cert-manager's schedule (it uses 1 hour doubling up to 32 hours; our defaults are
// 5 minutes up to 1 hour, which keeps within Let's Encrypt's failed-validation limit
// of 5 per hostname per hour while recovering sooner once the cause is fixed).

export interface BackoffSettings {
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export function backoffDelayMs(failedAttempts: number, settings: BackoffSettings): number {
  if (failedAttempts <= 0) return 0;
  // 2^(n-1) overflows nothing below 2^53; the cap applies long before.
  const delay = settings.backoffInitialMs * 2 ** Math.min(failedAttempts - 1, 52);
  return Math.min(delay, settings.backoffMaxMs);
}

/** When the next attempt may start; undefined when there is no failure to wait out. */
export function nextAttemptAllowedAt(
  status: { failedIssuanceAttempts?: number; lastFailureTime?: string },
  settings: BackoffSettings,
): Date | undefined {
  const failures = status.failedIssuanceAttempts ?? 0;
  if (failures === 0 || status.lastFailureTime === undefined) return undefined;
  return new Date(Date.parse(status.lastFailureTime) + backoffDelayMs(failures, settings));
}
