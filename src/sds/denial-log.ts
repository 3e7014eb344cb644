import type { Logger } from '../observability/logger.js';
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

/**
 * Logs the names one request was denied: one line (with the caller, the first names and
 * the count), never one per name, and never whether a name exists. Lines past the rate
 * limit are counted into a summary.
 */
export function logDenied(clientLog: RateLimitedLog, log: Logger, identity: string, names: readonly string[]): void {
  clientLog.warn(
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
