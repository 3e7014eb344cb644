import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RateLimitedLog } from './rate-limited-log.js';

/** Names quoted in one denial line; the rest are counted. */
const SAMPLE = 5;
/** A quoted name is cut to this many characters: the client chooses names and their length. */
const QUOTED_NAME_LENGTH = 128;

function quoted(name: string | undefined): string | undefined {
  if (name === undefined || name.length <= QUOTED_NAME_LENGTH) return name;
  return `${name.slice(0, QUOTED_NAME_LENGTH)}…(${name.length} chars)`;
}

export const DENIED_MSG = 'secret name denied to caller';

export interface DenialDeps {
  metrics: Pick<Metrics, 'denied'>;
  clientLog: RateLimitedLog;
}

/**
 * The one way a denial is recorded, wherever it happens (a stream's request, a push after
 * a RoleBinding went away, FetchSecrets): each name is counted (`envoy_sds_denied_total`),
 * and the request gets one log line (the caller, the first names, the count), never one
 * per name, and never whether a name exists. Lines past the rate limit are counted into
 * a summary.
 */
export function recordDenied(deps: DenialDeps, log: Logger, identity: string, names: readonly string[]): void {
  if (names.length === 0) return;
  deps.metrics.denied.inc(names.length);
  deps.clientLog.warn(
    'denied',
    log,
    {
      identity,
      secret: quoted(names[0]),
      denied: names.length,
      ...(names.length > 1 ? { secrets: names.slice(0, SAMPLE).map(quoted) } : {}),
    },
    DENIED_MSG,
    names.length,
  );
}
