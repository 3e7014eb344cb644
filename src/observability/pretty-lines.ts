import { Writable } from 'node:stream';

const COLOURS: Record<string, string> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '35' };
const FIXED = new Set(['time', 'level', 'msg', 'service', 'pid', 'hostname']);

/** One JSON log line as a person reads it: time, level, message, then key=value. */
export function prettyLine(json: string, colour: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = scalar(entry['level'], 'info');
  const tag = level.toUpperCase().padEnd(5);
  const fields = Object.entries(entry)
    .filter(([k]) => !FIXED.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  const head = colour ? `\x1b[${COLOURS[level] ?? '0'}m${tag}\x1b[0m` : tag;
  return `${scalar(entry['time'], '')} ${head} ${scalar(entry['msg'], '')}${fields.length ? `  ${fields.join(' ')}` : ''}`;
}

function scalar(v: unknown, otherwise: string): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : otherwise;
}

/**
 * A destination for pino that prints lines for people (`--log-format pretty`). Redaction
 * has already happened in the logger: this only re-lays what pino wrote.
 */
export function prettyDestination(out: NodeJS.WritableStream = process.stdout): Writable {
  const colour = (out as { isTTY?: boolean }).isTTY === true && !process.env['NO_COLOR'];
  let rest = '';
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      if (lines.length > 0) out.write(lines.map((l) => prettyLine(l, colour)).join('\n') + '\n');
      cb();
    },
  });
}
