import { accessSync, constants } from 'node:fs';
import { parseSections } from '../main.js';
import { ConfigError } from '../config/config-error.js';
import { loadConfigFile, type ServerConfig } from '../config/server-config.js';
import { parseCommandArgs, UsageError } from './arguments.js';

export const VALIDATE_USAGE = `Usage: envoy-sds validate --config FILE

Checks a configuration file without starting anything: the file itself, the sections of
the Kubernetes source and the issuance engine (with their resource files), and that the
files it names can be read. Prints every problem found, one a line, with its field.
Exit status: 0 valid, 2 invalid.
`;

/** Problems of a config, as `field: message` lines; empty when it would start. */
export function configProblems(path: string): string[] {
  let config: ServerConfig;
  try {
    config = loadConfigFile(path);
  } catch (err) {
    if (err instanceof ConfigError) return [err.message];
    throw err;
  }
  const problems: string[] = [];
  // Each optional part's section (and its resource files), as the server parses them.
  try {
    parseSections(config);
  } catch (err) {
    if (err instanceof ConfigError) problems.push(err.message);
    else throw err;
  }
  const tls = config.grpc.tcp?.tls;
  const mustRead: Array<[string, string | undefined]> = [
    ['grpc.tcp.tls.certFile', tls?.certFile],
    ['grpc.tcp.tls.keyFile', tls?.keyFile],
    ['grpc.tcp.tls.clientCaFile', tls?.clientCaFile],
  ];
  for (const [field, file] of mustRead) {
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      problems.push(`${field}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  // Declared secret files may appear later (the server waits for them); say so, but as a note.
  return problems;
}

export function validateCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): number {
  const { values } = parseCommandArgs('validate', args, { config: { type: 'string', short: 'c' } });
  if (values.help) {
    out.write(VALIDATE_USAGE);
    return 0;
  }
  const path = values.config ?? process.env['ENVOY_SDS_CONFIG'];
  if (!path) throw new UsageError('envoy-sds validate: name the file with --config FILE (see envoy-sds validate --help)');
  const problems = configProblems(path);
  if (problems.length === 0) {
    out.write(`${path}: valid\n`);
    return 0;
  }
  for (const p of problems) err.write(p.startsWith(path) ? `${p}\n` : `${path}: ${p}\n`);
  return 2;
}
