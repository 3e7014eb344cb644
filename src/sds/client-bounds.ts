import type { LimitsConfig } from '../config/server-config.js';
import type { Logger } from '../observability/logger.js';
import { IdentityNames } from './identity-names.js';
import { RateLimitedLog } from './rate-limited-log.js';
import type { StreamDeps } from './stream-driver.js';

/**
 * The per-client bounds of the session layer, from the config's `limits`: what one
 * request, one stream and one caller identity may make the server keep or log.
 */
export function clientBounds(limits: LimitsConfig, logger: Logger): Pick<StreamDeps, 'limits' | 'identityNames' | 'clientLog'> {
  return {
    limits: {
      maxNamesPerStream: limits.maxNamesPerStream,
      maxNameLength: limits.maxNameLength,
      maxErrorDetailLength: limits.maxErrorDetailLength,
    },
    identityNames: new IdentityNames(limits.maxNamesPerIdentity),
    clientLog: new RateLimitedLog(logger, { linesPerInterval: limits.clientLogLinesPerInterval, intervalMs: limits.clientLogIntervalMs }),
  };
}
