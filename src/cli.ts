#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeSecret } from './client/describe-secret.js';
import { watchSecrets, type ClientOptions } from './client/sds-client.js';
import { ConfigError } from './config/config-error.js';
import { prepareLocalDefault, localDefaultPaths } from './config/local-default.js';
import { loadConfigFile, type ServerConfig } from './config/server-config.js';
import { localBootstrapYaml } from './envoy/local-bootstrap.js';
import { renewCommand, RENEW_USAGE } from './issuance/renew-command.js';
import { createLogger } from './observability/logger.js';

const USAGE = `envoy-sds: an SDS server for Envoy gateways

Usage:
  envoy-sds serve [--config FILE]      run the server (default command). Without a config
                                       file ($ENVOY_SDS_CONFIG): the local default, data in
                                       ./.envoy-sds or $ENVOY_SDS_DATA, SDS on
                                       127.0.0.1:18000 ($ENVOY_SDS_GRPC_ADDRESS), HTTP on
                                       127.0.0.1:18080 ($ENVOY_SDS_HTTP_ADDRESS)
  envoy-sds fetch NAME... [options]    show what Envoy would receive for these names
  envoy-sds watch NAME... [options]    the same, for every new version until interrupted
  envoy-sds bootstrap [--server ADDR]  print the Envoy bootstrap for the local default
${RENEW_USAGE}
Client options (fetch, watch):
  --server ADDR     host:port or unix:/path (default 127.0.0.1:18000)
  --ca FILE         use TLS, trusting this CA; with --cert/--key, mTLS
  --cert FILE, --key FILE
  --token TOKEN     sent as "authorization: Bearer TOKEN" (or $ENVOY_SDS_TOKEN)
  --show-key        print the private key too
  --timeout SECS    fetch: give up after this long (default 10)
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv[0]?.startsWith('-') ? ['serve', ...argv] : argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'fetch':
    case 'watch':
      return client(command, rest);
    case 'renew':
      return renewCommand(rest);
    case 'bootstrap': {
      const { values } = parseArgs({ args: rest, options: { server: { type: 'string', default: '127.0.0.1:18000' } } });
      process.stdout.write(localBootstrapYaml(values.server));
      return 0;
    }
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const logger = createLogger();
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
    if (err instanceof ConfigError) {
      process.stderr.write(`envoy-sds: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  logger.level = config.logLevel;
  // Imported here: the client commands should not pay for loading the whole server.
  const { startServer } = await import('./main.js');
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`envoy-sds: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
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

async function client(command: 'fetch' | 'watch', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      server: { type: 'string', default: '127.0.0.1:18000' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      token: { type: 'string' },
      'show-key': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '10' },
    },
  });
  if (positionals.length === 0) {
    process.stderr.write(`envoy-sds ${command}: name at least one secret\n`);
    return 2;
  }
  const opts: ClientOptions = { server: values.server };
  if (values.ca) opts.caFile = values.ca;
  if (values.cert) opts.certFile = values.cert;
  if (values.key) opts.keyFile = values.key;
  const token = values.token ?? process.env['ENVOY_SDS_TOKEN'];
  if (token) opts.token = token.startsWith('@') ? readFileSync(token.slice(1), 'utf8').trim() : token;
  let received = 0;
  const w = watchSecrets(opts, positionals, (v) => {
    for (const s of v.secrets) {
      process.stdout.write(`${describeSecret(s, v.version, values['show-key'])}\n\n`);
      received++;
    }
    return command === 'watch' || received < positionals.length;
  });
  const timer =
    command === 'fetch'
      ? setTimeout(() => {
          process.stderr.write(`envoy-sds fetch: no answer for ${positionals.filter(() => true).join(', ')} within ${values.timeout}s (missing, or not permitted)\n`);
          w.cancel();
          process.exitCode = 1;
        }, Number(values.timeout) * 1000)
      : undefined;
  process.once('SIGINT', () => w.cancel());
  try {
    await w.done;
  } catch (err) {
    process.stderr.write(`envoy-sds ${command}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(timer);
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`envoy-sds: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
