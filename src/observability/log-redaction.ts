/**
 * What never reaches a log line, applied by the logger configuration (pino's
 * formatters.log, and child bindings: ./logger.ts) so no call site has to remember it: the value
 * of a key in REDACTED_KEYS at the top of a log object or one level down, and of
 * tsig.secret, is written as REDACTION_CENSOR. (`secret` alone is not redacted: it is
 * the fixed field for a secret's name.)
 *
 * Why not pino's own `redact` option: its library (@pinojs/redact 0.4) parses every path
 * again and clones the object on every call. Measured with our paths: about 10 KB of
 * garbage and 10 µs per line, which in a rollover of 10,000 certificates (a log line
 * each, plus the audit line) was most of what the main thread allocated, and what drove
 * its GC pauses and RSS growth. This looks at two levels, allocates only when it
 * redacts, and never changes the caller's object.
 */
export const REDACTION_CENSOR = '[redacted]';

/** Keys redacted at the top of a log object and one level down (`*.key`). */
export const REDACTED_KEYS: ReadonlySet<string> = new Set([
  'privateKey',
  'private_key',
  'key',
  'keyPem',
  'token',
  'authorization',
  'password',
]);

/** Deeper keys redacted under a named top-level field (the `*.x` rule covers `headers.authorization`). */
const REDACTED_UNDER: ReadonlyMap<string, ReadonlySet<string>> = new Map([['tsig', new Set(['secret'])]]);

type LogObject = Record<string, unknown>;

/** `obj`, or a copy of it with every redacted value replaced. */
export function redactLogObject(obj: LogObject): LogObject {
  let out: LogObject | undefined;
  for (const key in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
    const value = obj[key];
    let replaced: unknown = value;
    if (REDACTED_KEYS.has(key)) replaced = REDACTION_CENSOR;
    else if (isRecord(value)) replaced = redactNested(value, REDACTED_UNDER.get(key));
    if (replaced !== value) {
      out ??= { ...obj };
      out[key] = replaced;
    }
  }
  return out ?? obj;
}

/** One level down: keys in REDACTED_KEYS, and `extra` (for tsig.secret). */
function redactNested(obj: object, extra: ReadonlySet<string> | undefined): object {
  let out: LogObject | undefined;
  for (const key in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
    if (!REDACTED_KEYS.has(key) && !extra?.has(key)) continue;
    out ??= copyOf(obj);
    out[key] = REDACTION_CENSOR;
  }
  return out ?? obj;
}

/** A plain copy; an Error keeps what its serializer would print (message and stack are not enumerable). */
function copyOf(obj: object): LogObject {
  // Spread copies an Error's own enumerable fields (code, cause...): the prototype is not wanted.
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  if (obj instanceof Error) return { type: obj.name, stack: obj.stack, ...obj, message: obj.message };
  return { ...(obj as LogObject) };
}

function isRecord(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
