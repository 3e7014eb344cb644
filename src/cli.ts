#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parseCommandArgs, UsageError } from './cli/arguments.js';
import { grpcTarget, parseServerAddress } from './cli/server-address.js';
import { INSPECT_USAGE, inspectCommand } from './cli/inspect-command.js';
import { ROTATE_CA_USAGE, rotateCaCommand } from './cli/rotate-ca-command.js';
import { STATUS_USAGE, statusCommand } from './cli/status-command.js';
import { VALIDATE_USAGE, validateCommand } from './cli/validate-command.js';
import { VERSION } from './observability/version.js';
import { describeSecret } from './client/describe-secret.js';
import { watchSecrets, type ClientOptions } from './client/sds-client.js';
import { ConfigError } from './config/config-error.js';
import { prepareLocalDefault, localDefaultPaths } from './config/local-default.js';
import { loadConfigFile, LOG_LEVELS, type ServerConfig } from './config/server-config.js';
import { localBootstrapYaml } from './cli/local-bootstrap.js';
import { renewCommand, RENEW_USAGE } from './issuance/renew-command.js';
import { createLogger } from './observability/logger.js';

const CLIENT_OPTIONS = `Options:
  --server ADDR     host:port, [ipv6]:port or unix:/path (default 127.0.0.1:18000)
  --ca FILE         use TLS, trusting this CA; with --cert/--key, mTLS
  --cert FILE, --key FILE
  --token TOKEN     sent as "authorization: Bearer TOKEN" ($ENVOY_SDS_TOKEN; @FILE reads a file)
  --show-key        print the private key too
  -h, --help        this help
`;

const HELP: Record<string, string> = {
  serve: `Usage: envoy-sds serve [--config FILE] [--log-format json|pretty]

Runs the server. Without a config file ($ENVOY_SDS_CONFIG): the local default, data in
./.envoy-sds or $ENVOY_SDS_DATA, SDS on 127.0.0.1:18000 ($ENVOY_SDS_GRPC_ADDRESS), HTTP
on 127.0.0.1:18080 ($ENVOY_SDS_HTTP_ADDRESS). SIGTERM drains the streams and exits.
Logs are JSON lines on stdout; --log-format pretty ($ENVOY_SDS_LOG_FORMAT) prints them
for people (time, level, message, key=value).
`,
  fetch: `Usage: envoy-sds fetch NAME... [options]

Shows what Envoy would receive for these names, one stream per name as Envoy opens them:
each secret's version, and per certificate the subject, SANs, validity, issuer, serial,
key type and SHA-256 fingerprint. Exit status 1 when a name gets no answer in time
(missing, or not permitted: the server does not say which).

${CLIENT_OPTIONS}  --timeout SECS    give up after this long (default 10)
`,
  watch: `Usage: envoy-sds watch NAME... [options]

Like fetch, for every new version until interrupted (Ctrl-C), each line stamped with the
time it arrived. When a stream ends (the server drains or restarts) it says why and
reconnects with backoff (1 s doubling to 30 s).

${CLIENT_OPTIONS}`,
  bootstrap: `Usage: envoy-sds bootstrap [--server ADDR]

Prints an Envoy bootstrap (envoy-config/gateway-tcp.yaml) whose SDS cluster points at
ADDR: host:port (a host name becomes a STRICT_DNS cluster), [ipv6]:port, or unix:/path
(a pipe address). Default 127.0.0.1:18000.
`,
  renew: `Usage:\n${RENEW_USAGE}`,
  validate: VALIDATE_USAGE,
  status: STATUS_USAGE,
  inspect: INSPECT_USAGE,
  'rotate-ca': ROTATE_CA_USAGE,
};

const USAGE = `envoy-sds ${VERSION}: an SDS server for Envoy gateways

Usage: envoy-sds COMMAND [options]

Commands:
  serve       run the server (the local default without a config file)
  fetch       show what Envoy would receive for some names
  watch       follow every new version of some names
  bootstrap   print an Envoy bootstrap that uses the server
  renew       ask the server to re-issue certificates now
  rotate-ca   rotate a CA issuer in stages (overlap, re-issue, retire)
  validate    check a configuration file without starting anything
  status      which gateway holds which version of each secret (fleet-wide)
  inspect     one secret's certificates, chain check, rejections and holders

  envoy-sds COMMAND --help   the command's options
  envoy-sds --version        the version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    process.stdout.write(topic && HELP[topic] ? HELP[topic] : USAGE);
    return 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`envoy-sds ${VERSION} (node ${process.version})\n`);
    return 0;
  }
  if (command !== 'renew' && (rest.includes('--help') || rest.includes('-h')) && HELP[command]) {
    process.stdout.write(HELP[command]);
    return 0;
  }
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'fetch':
    case 'watch':
      return client(command, rest);
    case 'renew':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(HELP['renew']!);
        return 0;
      }
      return renewCommand(rest);
    case 'validate':
      return validateCommand(rest);
    case 'status':
      return statusCommand(rest);
    case 'inspect':
      return inspectCommand(rest);
    case 'rotate-ca':
      return rotateCaCommand(rest);
    case 'bootstrap': {
      const { values, positionals } = parseCommandArgs('bootstrap', rest, { server: { type: 'string', default: '127.0.0.1:18000' } });
      if (positionals.length > 0)
        throw new UsageError(`envoy-sds bootstrap: unexpected argument "${positionals[0]}" (see envoy-sds bootstrap --help)`);
      process.stdout.write(localBootstrapYaml(parseServerAddress(values.server)));
      return 0;
    }
    default:
      throw new UsageError(`envoy-sds: unknown command "${command}" (commands: ${Object.keys(HELP).join(', ')}; see envoy-sds --help)`);
  }
}

async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('serve', args, {
    config: { type: 'string', short: 'c' },
    'log-format': { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`envoy-sds serve: unexpected argument "${positionals[0]}" (see envoy-sds serve --help)`);
  const format = values['log-format'] ?? process.env['ENVOY_SDS_LOG_FORMAT'] ?? 'json';
  if (format !== 'json' && format !== 'pretty') throw new UsageError(`envoy-sds serve: --log-format ${format}: expected json or pretty`);
  const envLevel = process.env['LOG_LEVEL'];
  if (envLevel !== undefined && !LOG_LEVELS.includes(envLevel)) {
    return startFailed(
      `envoy-sds: invalid configuration: LOG_LEVEL (environment): "${envLevel}" is not a level (one of: ${LOG_LEVELS.join(', ')})\n`,
      2,
    );
  }
  const logger = createLogger({ format });
  // grpc-js writes its own errors to stderr; they belong in the server's log.
  grpc.setLogger({ error: (...args: unknown[]) => logger.warn({ component: 'grpc-js' }, args.map(String).join(' ')) });
  let config: ServerConfig;
  let localDefault = false;
  try {
    const path = values.config ?? process.env['ENVOY_SDS_CONFIG'];
    if (path) config = loadConfigFile(path);
    else {
      localDefault = true;
      const env = process.env;
      config = await prepareLocalDefault(resolve(env['ENVOY_SDS_DATA'] ?? '.envoy-sds'), logger, {
        ...(env['ENVOY_SDS_GRPC_ADDRESS'] ? { grpc: env['ENVOY_SDS_GRPC_ADDRESS'] } : {}),
        ...(env['ENVOY_SDS_HTTP_ADDRESS'] ? { http: env['ENVOY_SDS_HTTP_ADDRESS'] } : {}),
      });
    }
  } catch (err) {
    if (err instanceof ConfigError) return startFailed(`envoy-sds: invalid configuration: ${err.message}\n`, 2);
    throw err;
  }
  logger.level = config.logLevel;
  // Imported here: the client commands should not pay for loading the whole server.
  const { startServer } = await import('./main.js');
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    // One line, the field to fix, and no half-started process: startServer has stopped
    // whatever it had bound or started; the exit makes sure nothing lingers.
    if (err instanceof ConfigError) return startFailed(`envoy-sds: invalid configuration: ${err.message}\n`, 2);
    logger.error({ err }, 'start failed');
    return startFailed(`envoy-sds: cannot start: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}\n`, 1);
  }
  if (localDefault && server.grpcAddress) {
    const paths = localDefaultPaths(config.dataDir);
    process.stderr.write(
      `\n# envoy-sds local default: serving "localhost" and "localhost-cacert" on ${server.grpcAddress}\n` +
        `# CA certificate: ${paths.caCert}\n` +
        `# Try:  envoy-sds fetch localhost --server ${server.grpcAddress}\n` +
        `# Envoy bootstrap that uses it (envoy -c <file>):\n\n${localBootstrapYaml(server.grpcAddress)}\n`,
    );
  }
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      server.stop().then(resolveStop, resolveStop);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  // Stopped: whatever is still pending (a read stuck in a hung mount) must not keep the
  // process alive. The timer is unref'd, so it fires only if something else still does.
  setTimeout(() => process.exit(), 2000).unref();
  return 0;
}

/** Writes the one line, then exits: a start that failed leaves nothing running. */
function startFailed(line: string, code: number): Promise<number> {
  return new Promise(() => {
    process.stderr.write(line, () => process.exit(code));
  });
}

async function client(command: 'fetch' | 'watch', args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(command, args, {
    server: { type: 'string', default: '127.0.0.1:18000' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    token: { type: 'string' },
    'show-key': { type: 'boolean', default: false },
    timeout: { type: 'string', default: '10' },
  });
  if (positionals.length === 0) throw new UsageError(`envoy-sds ${command}: name at least one secret (see envoy-sds ${command} --help)`);
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new UsageError(`envoy-sds ${command}: --timeout ${values.timeout}: expected a number of seconds`);
  if (Boolean(values.cert) !== Boolean(values.key)) throw new UsageError(`envoy-sds ${command}: --cert and --key go together`);
  const opts: ClientOptions = { server: grpcTarget(parseServerAddress(values.server)) };
  if (values.ca) opts.caFile = values.ca;
  if (values.cert) opts.certFile = values.cert;
  if (values.key) opts.keyFile = values.key;
  const token = values.token ?? process.env['ENVOY_SDS_TOKEN'];
  if (token) opts.token = readToken(token);
  const show = { showKey: values['show-key'] };
  return command === 'fetch' ? fetchOnce(opts, positionals, timeout, show) : watchForever(opts, positionals, show);
}

function readToken(token: string): string {
  if (!token.startsWith('@')) return token;
  try {
    return readFileSync(token.slice(1), 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--token ${token}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

async function fetchOnce(opts: ClientOptions, names: string[], timeoutSeconds: number, show: { showKey: boolean }): Promise<number> {
  const answered = new Set<string>();
  const w = watchSecrets(opts, names, (v) => {
    process.stdout.write(`${describeSecret(v.secret ?? { name: v.name }, v.version, show.showKey)}\n\n`);
    answered.add(v.name);
    return false;
  });
  const timer = setTimeout(() => w.cancel(), timeoutSeconds * 1000);
  process.once('SIGINT', () => w.cancel());
  const ends = await w.done.finally(() => clearTimeout(timer));
  let code = 0;
  for (const end of ends) {
    if (answered.has(end.name)) continue;
    code = 1;
    const why =
      end.code === grpc.status.CANCELLED
        ? `no answer within ${timeoutSeconds}s (missing, or not permitted)`
        : `${grpc.status[end.code]}: ${end.details}`;
    process.stderr.write(`envoy-sds fetch ${end.name}: ${why}\n`);
  }
  return code;
}

/** Follows every version; a stream that ends is reported and reopened with backoff. */
async function watchForever(opts: ClientOptions, names: string[], show: { showKey: boolean }): Promise<number> {
  let stopped = false;
  let current: { cancel(): void } | undefined;
  let wake: (() => void) | undefined;
  process.once('SIGINT', () => {
    stopped = true;
    current?.cancel();
    wake?.();
  });
  const stamp = () => new Date().toISOString();
  let backoffMs = 1000;
  while (!stopped) {
    const pending = new Set(names);
    const w = watchSecrets(opts, [...pending], (v) => {
      backoffMs = 1000;
      process.stdout.write(`[${stamp()}] received\n${describeSecret(v.secret ?? { name: v.name }, v.version, show.showKey)}\n\n`);
    });
    current = w;
    const ends = await w.done;
    if (stopped) break;
    for (const end of ends)
      process.stderr.write(
        `[${stamp()}] ${end.name}: stream ended (${grpc.status[end.code]}: ${end.details}); reconnecting in ${backoffMs / 1000}s\n`,
      );
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, backoffMs);
    });
    backoffMs = Math.min(backoffMs * 2, 30_000);
  }
  process.stderr.write(`[${stamp()}] stopped (interrupted)\n`);
  return 0;
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      const prefix = err.message.startsWith('envoy-sds') ? '' : `envoy-sds ${argv[0] ?? ''}: `;
      process.stderr.write(`${prefix}${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`envoy-sds: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
