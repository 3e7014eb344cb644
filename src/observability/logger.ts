import { pino, type Logger, type LoggerOptions } from 'pino';
import { prettyDestination } from './pretty-lines.js';

export type { Logger };

/**
 * Paths that may carry key material or credentials. (`secret` is not among them: it is
 * the fixed field for a secret's name.) Redaction lives here, in the logger
 * configuration, so no call site has to remember it.
 */
export const REDACTED_PATHS = [
  'privateKey',
  'private_key',
  'key',
  'keyPem',
  'token',
  'authorization',
  'password',
  '*.privateKey',
  '*.private_key',
  '*.key',
  '*.keyPem',
  '*.token',
  '*.authorization',
  '*.password',
  'tsig.secret',
  'metadata.authorization',
  'headers.authorization',
];

export type LogFormat = 'json' | 'pretty';

export interface LoggerSettings {
  level?: string;
  /** json (default, for collectors) or pretty (for people at a terminal). */
  format?: LogFormat;
  /** Where to write; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? process.env['LOG_LEVEL'] ?? 'info',
    base: { service: 'envoy-sds' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const destination = settings.format === 'pretty' ? prettyDestination(settings.destination) : settings.destination;
  return destination ? pino(options, destination as unknown as pino.DestinationStream) : pino(options);
}

/** A logger that drops everything, for unit tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
