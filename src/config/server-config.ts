import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './config-error.js';

/**
 * Identities -> allowed name patterns (`authorization.rules`). An identity selector is
 * `loopback`, `unix`, `any-authenticated`, `dns:<pattern>` (a client certificate's DNS
 * SANs only), `uri:<pattern>` (its URI SANs only), `system:serviceaccount:ns:sa`, or any
 * other URI such as `spiffe://…` (URI SANs), with a trailing `*` allowed.
 */
export interface PolicyRule {
  identities: string[];
  names: string[];
}

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
  /** Connections one peer address may hold before any of its streams authenticated. */
  maxUnauthenticatedConnectionsPerPeer: number;
  /** A connection with no open stream for this long is closed (GOAWAY). */
  idleConnectionTimeoutMs: number;
  /** File descriptors kept free for the sources: connections stop being accepted before. */
  reservedFileDescriptors: number;
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

/** How updates are validated at the store's door. */
export interface ValidationConfig {
  /**
   * Worker threads that validate offered secrets off the event loop; 0 validates on
   * the event loop. Undefined: one per core but one, from 1 to 4 (main.ts decides).
   */
  workers?: number;
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
  http?: HttpConfig;
  limits: LimitsConfig;
  validation: ValidationConfig;
  secrets: FileSecretConfig[];
  authorization: { rules: PolicyRule[] };
  logLevel: string;
  /**
   * Whether a TCP peer on loopback is the `loopback` identity (gRPC) and may use the
   * issuance controls (HTTP). Default: true, except in Kubernetes (KUBERNETES_SERVICE_HOST
   * set, or a `kubernetes:` section), where a sidecar delivers every peer from loopback.
   */
  trustLoopback: boolean;
  /** Seconds to wait for streams to end on shutdown before forcing it. */
  drainSeconds: number;
  /**
   * Sections owned by optional parts, parsed by them (parseSections in src/main.ts):
   * `kubernetes` (Kubernetes source and authorization), `issuance` (the engine).
   */
  kubernetes?: unknown;
  issuance?: unknown;
  /** The config file's directory: relative paths in those sections resolve here. */
  configDir: string;
}

export interface HttpConfig {
  address: string;
  /**
   * Host names (besides the addresses the port is bound to) that requests may carry in
   * `Host`; any other Host is refused, except on /.well-known/acme-challenge/.
   */
  allowedHosts: string[];
  /**
   * How much `/`, `/status` and `/readyz` tell: `full`, `limited` (counts, no names, paths,
   * node ids or NACK texts), or `auto`: full when bound to loopback, limited otherwise.
   */
  details: 'auto' | 'full' | 'limited';
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const DEFAULT_LIMITS: LimitsConfig = {
  maxConcurrentStreams: 100_000,
  maxNamesPerStream: 5000,
  maxMessageBytes: 4 * 1024 * 1024,
  maxSecretBytes: 256 * 1024,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  maxUnauthenticatedConnectionsPerPeer: 100,
  idleConnectionTimeoutMs: 300_000,
  reservedFileDescriptors: 256,
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

/**
 * Validates a parsed config document; relative paths resolve against `baseDir`; `env`
 * tells whether the process runs in Kubernetes (KUBERNETES_SERVICE_HOST).
 */
export function parseConfig(doc: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const root = obj(doc, '(root)');
  known(root, '(root)', ['dataDir', 'grpc', 'http', 'limits', 'validation', 'secrets', 'authorization', 'logLevel', 'trustLoopback', 'drainSeconds', 'kubernetes', 'issuance']);
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
    grpc.unix = { path: p(str(unix['path'], 'grpc.unix.path')), mode: socketMode(unix['mode'] ?? '0600', 'grpc.unix.mode') };
  }
  if (!grpc.tcp && !grpc.unix) throw new ConfigError('grpc', 'at least one of tcp or unix must be set');

  let http: ServerConfig['http'] = { address: DEFAULT_HTTP_ADDRESS, allowedHosts: [], details: 'auto' };
  if (root['http'] === null) http = undefined;
  else if (root['http'] !== undefined) {
    const h = obj(root['http'], 'http');
    known(h, 'http', ['address', 'allowedHosts', 'details']);
    const details = h['details'] ?? 'auto';
    if (details !== 'auto' && details !== 'full' && details !== 'limited') {
      throw new ConfigError('http.details', 'must be one of: auto, full, limited');
    }
    http = {
      address: address(h['address'] ?? DEFAULT_HTTP_ADDRESS, 'http.address'),
      allowedHosts: arr(h['allowedHosts'] ?? [], 'http.allowedHosts').map((x, i) => str(x, `http.allowedHosts[${i}]`).toLowerCase()),
      details,
    };
  }

  const limits = { ...DEFAULT_LIMITS };
  if (root['limits'] !== undefined) {
    const l = obj(root['limits'], 'limits');
    known(l, 'limits', Object.keys(DEFAULT_LIMITS));
    for (const k of Object.keys(DEFAULT_LIMITS) as (keyof LimitsConfig)[]) {
      if (l[k] !== undefined) limits[k] = positiveInt(l[k], `limits.${k}`);
    }
  }

  const validation: ValidationConfig = {};
  if (root['validation'] !== undefined) {
    const v = obj(root['validation'], 'validation');
    known(v, 'validation', ['workers']);
    if (v['workers'] !== undefined) {
      const w = v['workers'];
      if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 256) {
        throw new ConfigError('validation.workers', 'must be an integer from 0 to 256');
      }
      validation.workers = w;
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

  const logLevel = optStr(root['logLevel'], 'logLevel') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('logLevel', `"${logLevel}" is not a level (one of: ${LOG_LEVELS.join(', ')})`);
  // In Kubernetes a sidecar (Istio, Linkerd) delivers every peer from 127.0.0.1 or 127.0.0.6.
  const inKubernetes = root['kubernetes'] !== undefined || Boolean(env['KUBERNETES_SERVICE_HOST']);
  const trustLoopback = root['trustLoopback'] === undefined ? !inKubernetes : bool(root['trustLoopback'], 'trustLoopback');

  return {
    dataDir: p(optStr(root['dataDir'], 'dataDir') ?? '.envoy-sds'),
    grpc,
    http,
    limits,
    validation,
    secrets,
    authorization: { rules },
    logLevel,
    trustLoopback,
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
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(s);
  if (!m) throw new ConfigError(at, `"${s}" is not host:port`);
  if (Number(m[2]) > 65535) throw new ConfigError(at, `port ${m[2]} is out of range (0-65535)`);
  return s;
}
/**
 * A Unix socket mode: a quoted octal string ("0600", "600", "0o600"). A YAML number is
 * refused (unquoted 0600 is decimal 600 in YAML 1.2), and so is a world-writable mode:
 * the socket's mode is the trust boundary.
 */
function socketMode(v: unknown, at: string): number {
  if (typeof v !== 'string') throw new ConfigError(at, 'write the mode as a quoted octal string, such as "0600"');
  const m = /^(?:0o?)?([0-7]{3})$/.exec(v);
  if (!m) throw new ConfigError(at, `"${v}" is not an octal file mode (three octal digits, such as "0600")`);
  const mode = parseInt(m[1]!, 8);
  if (mode & 0o002) throw new ConfigError(at, `"${v}" is world-writable: any local user could connect and read secrets; use "0600" or "0660"`);
  return mode;
}
function known(o: Record<string, unknown>, at: string, keys: string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new ConfigError(`${at}.${k}`, `unknown field (expected one of: ${keys.join(', ')})`);
  }
}
