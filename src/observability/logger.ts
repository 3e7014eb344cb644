import { pino, type Logger, type LoggerOptions } from 'pino';
import { redactLogObject } from './log-redaction.js';
import { prettyDestination } from './pretty-lines.js';

export type { Logger };

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
    timestamp: pino.stdTimeFunctions.isoTime,
    // Keys and tokens are redacted here, for every call site (see log-redaction.ts).
    formatters: { level: (label) => ({ level: label }), log: redactLogObject, bindings: redactLogObject },
  };
  const destination = settings.format === 'pretty' ? prettyDestination(settings.destination) : settings.destination;
  return withRedactedChildBindings(destination ? pino(options, destination as unknown as pino.DestinationStream) : pino(options));
}

/**
 * pino gives a child's bindings no formatter (formatters.bindings is for the root's
 * only), so child() redacts them first. Children are made with Object.create(parent):
 * they inherit this child(), and so do theirs.
 */
function withRedactedChildBindings(root: Logger): Logger {
  type ChildFn = (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger;
  // Called with the child's own `this` below.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const child = root.child as unknown as ChildFn;
  const redactedChild: ChildFn = function (bindings, options) {
    return child.call(this, redactLogObject(bindings), options);
  };
  Object.defineProperty(root, 'child', { value: redactedChild, writable: true, configurable: true });
  return root;
}

/** A logger that drops everything, for unit tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
