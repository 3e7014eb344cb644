import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { PolicyRule } from '../authz/local-policy.js';
import { ConfigError } from './config-error.js';

export interface TlsListenerConfig {
  certFile: string;
  keyFile: string;
  /** CA bundle that client certificates must chain to (mTLS). */
  clientCaFile?: string;
  requireClientCert: boolean;
}

export interface LimitsConfig {
  maxConcurrentStreams: number;
  maxNamesPerStream: number;
  maxMessageBytes: number;
  maxSecretBytes: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /** Longest secret name a client may ask for (characters). */
  maxNameLength: number;
  /** Distinct names one caller identity may hold across all its streams. */
  maxNamesPerIdentity: number;
  /** A NACK's error_detail is cut to this many characters before it is kept, logged or shown. */
  maxErrorDetailLength: number;
  /** Warnings of one kind that clients can cause (denials, NACKs, refused streams) per interval. */
  clientLogLinesPerInterval: number;
  clientLogIntervalMs: number;
  /** A secret file read still running after this long is abandoned and retried later. */
  fileReadTimeoutMs: number;
}

export type FileSecretConfig =
  | { name: string; kind: 'tls_certificate'; certificateChainFile: string; privateKeyFile: string }
  | { name: string; kind: 'validation_context'; trustedCaFile: string };

export interface ServerConfig {
  dataDir: string;
  grpc: {
    tcp?: { address: string; tls?: TlsListenerConfig };
    unix?: { path: string; mode: number };
  };
  http?: { address: string };
  limits: LimitsConfig;
  secrets: FileSecretConfig[];
  authorization: { rules: PolicyRule[] };
  logLevel: string;
  /** Seconds to wait for streams to end on shutdown before forcing it. */
  drainSeconds: number;
  /**
   * Sections owned by optional components (see src/components.ts), validated by them:
   * `kubernetes` (Kubernetes source and authorization), `issuance` (the engine).
   */
  kubernetes?: unknown;
  issuance?: unknown;
  /** The config file's directory: relative paths in component sections resolve here. */
  configDir: string;
}

export const DEFAULT_LIMITS: LimitsConfig = {
  maxConcurrentStreams: 100_000,
  maxNamesPerStream: 5000,
  maxMessageBytes: 4 * 1024 * 1024,
  maxSecretBytes: 256 * 1024,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  maxNameLength: 512,
  maxNamesPerIdentity: 20_000,
  maxErrorDetailLength: 1024,
  clientLogLinesPerInterval: 20,
  clientLogIntervalMs: 10_000,
  fileReadTimeoutMs: 5000,
};

export const DEFAULT_GRPC_ADDRESS = '127.0.0.1:18000';
export const DEFAULT_HTTP_ADDRESS = '127.0.0.1:18080';

export function loadConfigFile(path: string): ServerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, `cannot read config file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(path, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseConfig(doc ?? {}, dirname(resolve(path)));
}

/** Validates a parsed config document; relative paths resolve against `baseDir`. */
export function parseConfig(doc: unknown, baseDir: string): ServerConfig {
  const root = obj(doc, '(root)');
  known(root, '(root)', ['dataDir', 'grpc', 'http', 'limits', 'secrets', 'authorization', 'logLevel', 'drainSeconds', 'kubernetes', 'issuance']);
  const p = (v: string) => (isAbsolute(v) ? v : resolve(baseDir, v));

  const grpcDoc = root['grpc'] === undefined ? { tcp: { address: DEFAULT_GRPC_ADDRESS } } : obj(root['grpc'], 'grpc');
  known(grpcDoc, 'grpc', ['tcp', 'unix']);
  const grpc: ServerConfig['grpc'] = {};
  if (grpcDoc['tcp'] !== undefined && grpcDoc['tcp'] !== null) {
    const tcp = obj(grpcDoc['tcp'], 'grpc.tcp');
    known(tcp, 'grpc.tcp', ['address', 'tls']);
    grpc.tcp = { address: address(tcp['address'] ?? DEFAULT_GRPC_ADDRESS, 'grpc.tcp.address') };
    if (tcp['tls'] !== undefined) {
      const tls = obj(tcp['tls'], 'grpc.tcp.tls');
      known(tls, 'grpc.tcp.tls', ['certFile', 'keyFile', 'clientCaFile', 'requireClientCert']);
      const clientCa = optStr(tls['clientCaFile'], 'grpc.tcp.tls.clientCaFile');
      grpc.tcp.tls = {
        certFile: p(str(tls['certFile'], 'grpc.tcp.tls.certFile')),
        keyFile: p(str(tls['keyFile'], 'grpc.tcp.tls.keyFile')),
        ...(clientCa ? { clientCaFile: p(clientCa) } : {}),
        requireClientCert: bool(tls['requireClientCert'] ?? clientCa !== undefined, 'grpc.tcp.tls.requireClientCert'),
      };
      if (grpc.tcp.tls.requireClientCert && !clientCa) {
        throw new ConfigError('grpc.tcp.tls.clientCaFile', 'required when requireClientCert is true');
      }
    }
  }
  if (grpcDoc['unix'] !== undefined && grpcDoc['unix'] !== null) {
    const unix = obj(grpcDoc['unix'], 'grpc.unix');
    known(unix, 'grpc.unix', ['path', 'mode']);
    const modeRaw = unix['mode'] ?? '0600';
    const mode = typeof modeRaw === 'number' ? modeRaw : parseInt(str(modeRaw, 'grpc.unix.mode'), 8);
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new ConfigError('grpc.unix.mode', 'an octal file mode such as "0600"');
    grpc.unix = { path: p(str(unix['path'], 'grpc.unix.path')), mode };
  }
  if (!grpc.tcp && !grpc.unix) throw new ConfigError('grpc', 'at least one of tcp or unix must be set');

  let http: ServerConfig['http'] = { address: DEFAULT_HTTP_ADDRESS };
  if (root['http'] === null) http = undefined;
  else if (root['http'] !== undefined) {
    const h = obj(root['http'], 'http');
    known(h, 'http', ['address']);
    http = { address: address(h['address'] ?? DEFAULT_HTTP_ADDRESS, 'http.address') };
  }

  const limits = { ...DEFAULT_LIMITS };
  if (root['limits'] !== undefined) {
    const l = obj(root['limits'], 'limits');
    known(l, 'limits', Object.keys(DEFAULT_LIMITS));
    for (const k of Object.keys(DEFAULT_LIMITS) as (keyof LimitsConfig)[]) {
      if (l[k] !== undefined) limits[k] = positiveInt(l[k], `limits.${k}`);
    }
  }

  const secrets: FileSecretConfig[] = [];
  const seen = new Set<string>();
  arr(root['secrets'] ?? [], 'secrets').forEach((raw, i) => {
    const at = `secrets[${i}]`;
    const s = obj(raw, at);
    known(s, at, ['name', 'tlsCertificate', 'validationContext']);
    const name = str(s['name'], `${at}.name`);
    if (seen.has(name)) throw new ConfigError(`${at}.name`, `"${name}" is declared twice`);
    seen.add(name);
    if ((s['tlsCertificate'] === undefined) === (s['validationContext'] === undefined)) {
      throw new ConfigError(at, 'set exactly one of tlsCertificate or validationContext');
    }
    if (s['tlsCertificate'] !== undefined) {
      const t = obj(s['tlsCertificate'], `${at}.tlsCertificate`);
      known(t, `${at}.tlsCertificate`, ['certificateChainFile', 'privateKeyFile']);
      secrets.push({
        name,
        kind: 'tls_certificate',
        certificateChainFile: p(str(t['certificateChainFile'], `${at}.tlsCertificate.certificateChainFile`)),
        privateKeyFile: p(str(t['privateKeyFile'], `${at}.tlsCertificate.privateKeyFile`)),
      });
    } else {
      const v = obj(s['validationContext'], `${at}.validationContext`);
      known(v, `${at}.validationContext`, ['trustedCaFile']);
      secrets.push({ name, kind: 'validation_context', trustedCaFile: p(str(v['trustedCaFile'], `${at}.validationContext.trustedCaFile`)) });
    }
  });

  const rules: PolicyRule[] = [];
  if (root['authorization'] !== undefined) {
    const a = obj(root['authorization'], 'authorization');
    known(a, 'authorization', ['rules']);
    arr(a['rules'] ?? [], 'authorization.rules').forEach((raw, i) => {
      const at = `authorization.rules[${i}]`;
      const r = obj(raw, at);
      known(r, at, ['identities', 'names']);
      rules.push({
        identities: arr(r['identities'], `${at}.identities`).map((x, j) => str(x, `${at}.identities[${j}]`)),
        names: arr(r['names'], `${at}.names`).map((x, j) => str(x, `${at}.names[${j}]`)),
      });
    });
  }

  return {
    dataDir: p(optStr(root['dataDir'], 'dataDir') ?? '.envoy-sds'),
    grpc,
    http,
    limits,
    secrets,
    authorization: { rules },
    logLevel: optStr(root['logLevel'], 'logLevel') ?? 'info',
    drainSeconds: root['drainSeconds'] === undefined ? 10 : positiveInt(root['drainSeconds'], 'drainSeconds'),
    configDir: baseDir,
    ...(root['kubernetes'] !== undefined ? { kubernetes: root['kubernetes'] } : {}),
    ...(root['issuance'] !== undefined ? { issuance: root['issuance'] } : {}),
  };
}

function obj(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(at, 'must be a mapping');
  return v as Record<string, unknown>;
}
function arr(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw new ConfigError(at, 'must be a list');
  return v;
}
function str(v: unknown, at: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(at, 'must be a non-empty string');
  return v;
}
function optStr(v: unknown, at: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, at);
}
function bool(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(at, 'must be true or false');
  return v;
}
function positiveInt(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(at, 'must be a positive integer');
  return v;
}
function address(v: unknown, at: string): string {
  const s = str(v, at);
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(s)) throw new ConfigError(at, `"${s}" is not host:port`);
  return s;
}
function known(o: Record<string, unknown>, at: string, keys: string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new ConfigError(`${at}.${k}`, `unknown field (expected one of: ${keys.join(', ')})`);
  }
}
