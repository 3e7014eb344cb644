import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A user error on the command line: one line on stderr, exit 2, never a stack trace. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `parseArgs` in strict mode, with `--help` on every command and its errors (unknown
 * option, missing value) turned into a UsageError that names the command.
 */
export function parseCommandArgs<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, allowPositionals: true, strict: true, options: { ...options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(
        `envoy-sds ${command}: ${(err as Error).message.split('. ')[0]!.replace(/\.$/, '')} (see envoy-sds ${command} --help)`,
      );
    }
    throw err;
  }
}
