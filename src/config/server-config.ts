import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { ConfigError } from './config-error.js';
import { checkSchema } from './schema/check.js';
import { intFrom, nonEmpty, positiveInt, stringList } from './schema/fields.js';
import { exactlyOne, withRules } from './schema/rules.js';

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

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_LEVELS: readonly string[] = LEVELS;

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

const address = nonEmpty.superRefine((s, ctx) => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(s);
  if (!m) ctx.addIssue({ code: 'custom', message: `"${s}" is not host:port`, input: s });
  else if (Number(m[2]) > 65535) ctx.addIssue({ code: 'custom', message: `port ${m[2]} is out of range (0-65535)`, input: s });
});

/**
 * A Unix socket mode: a quoted octal string ("0600", "600", "0o600"). A YAML number is
 * refused (unquoted 0600 is decimal 600 in YAML 1.2), and so is a world-writable mode:
 * the socket's mode is the trust boundary.
 */
const socketMode = z
  .string({ error: 'write the mode as a quoted octal string, such as "0600"' })
  .superRefine((v, ctx) => {
    const m = /^(?:0o?)?([0-7]{3})$/.exec(v);
    if (!m) ctx.addIssue({ code: 'custom', message: `"${v}" is not an octal file mode (three octal digits, such as "0600")`, input: v });
    else if (parseInt(m[1]!, 8) & 0o002)
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is world-writable: any local user could connect and read secrets; use "0600" or "0660"`,
        input: v,
      });
  })
  .transform((v) => parseInt(/([0-7]{3})$/.exec(v)![1]!, 8));

const limitsShape = Object.fromEntries(Object.keys(DEFAULT_LIMITS).map((k) => [k, positiveInt.optional()])) as Record<
  keyof LimitsConfig,
  z.ZodOptional<typeof positiveInt>
>;

const configFile = z.strictObject({
  dataDir: nonEmpty.nullable().optional(),
  grpc: z
    .strictObject({
      tcp: z
        .strictObject({
          address: address.optional(),
          tls: z
            .strictObject({
              certFile: nonEmpty,
              keyFile: nonEmpty,
              clientCaFile: nonEmpty.nullable().optional(),
              requireClientCert: z.boolean().optional(),
            })
            .optional(),
        })
        .nullable()
        .optional(),
      unix: z.strictObject({ path: nonEmpty, mode: socketMode.optional() }).nullable().optional(),
    })
    .optional(),
  http: z
    .strictObject({
      address: address.optional(),
      allowedHosts: stringList.optional(),
      details: z.enum(['auto', 'full', 'limited'], { error: 'must be one of: auto, full, limited' }).optional(),
    })
    .nullable()
    .optional(),
  limits: z.strictObject(limitsShape).optional(),
  validation: z.strictObject({ workers: intFrom(0, 256).optional() }).optional(),
  secrets: z
    .array(
      withRules(
        z.strictObject({
          name: nonEmpty,
          tlsCertificate: z.strictObject({ certificateChainFile: nonEmpty, privateKeyFile: nonEmpty }).optional(),
          validationContext: z.strictObject({ trustedCaFile: nonEmpty }).optional(),
        }),
        [exactlyOne(['tlsCertificate', 'validationContext'], 'set exactly one of tlsCertificate or validationContext')],
      ),
    )
    .optional(),
  authorization: z
    .strictObject({
      rules: z
        .array(z.strictObject({ identities: stringList, names: stringList }))
        .nullable()
        .optional(),
    })
    .optional(),
  logLevel: z
    .enum(LEVELS, { error: (iss) => `${JSON.stringify(iss.input)} is not a level (one of: ${LOG_LEVELS.join(', ')})` })
    .nullable()
    .optional(),
  trustLoopback: z.boolean().optional(),
  drainSeconds: positiveInt.optional(),
  // Checked by their own parsers (config/kubernetes-config.ts, issuance/issuance-config.ts).
  kubernetes: z.unknown().optional(),
  issuance: z.unknown().optional(),
});

/**
 * Validates a parsed config document; relative paths resolve against `baseDir`; `env`
 * tells whether the process runs in Kubernetes (KUBERNETES_SERVICE_HOST).
 */
export function parseConfig(doc: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const root = checkSchema(configFile, doc, '');
  const p = (v: string) => (isAbsolute(v) ? v : resolve(baseDir, v));

  const grpcDoc = root.grpc ?? { tcp: { address: DEFAULT_GRPC_ADDRESS } };
  const grpc: ServerConfig['grpc'] = {};
  if (grpcDoc.tcp) {
    const tls = grpcDoc.tcp.tls;
    grpc.tcp = { address: grpcDoc.tcp.address ?? DEFAULT_GRPC_ADDRESS };
    if (tls) {
      const clientCa = tls.clientCaFile ?? undefined;
      grpc.tcp.tls = {
        certFile: p(tls.certFile),
        keyFile: p(tls.keyFile),
        ...(clientCa ? { clientCaFile: p(clientCa) } : {}),
        requireClientCert: tls.requireClientCert ?? clientCa !== undefined,
      };
      if (grpc.tcp.tls.requireClientCert && !clientCa) {
        throw new ConfigError('grpc.tcp.tls.clientCaFile', 'required when requireClientCert is true');
      }
    }
  }
  if (grpcDoc.unix) grpc.unix = { path: p(grpcDoc.unix.path), mode: grpcDoc.unix.mode ?? 0o600 };
  if (!grpc.tcp && !grpc.unix) throw new ConfigError('grpc', 'at least one of tcp or unix must be set');

  const http: ServerConfig['http'] =
    root.http === null
      ? undefined
      : {
          address: root.http?.address ?? DEFAULT_HTTP_ADDRESS,
          allowedHosts: (root.http?.allowedHosts ?? []).map((h) => h.toLowerCase()),
          details: root.http?.details ?? 'auto',
        };

  const limits = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(root.limits ?? {}) as Array<[keyof LimitsConfig, number | undefined]>)
    if (v !== undefined) limits[k] = v;

  const secrets: FileSecretConfig[] = [];
  const seen = new Set<string>();
  (root.secrets ?? []).forEach((s, i) => {
    if (seen.has(s.name)) throw new ConfigError(`secrets[${i}].name`, `"${s.name}" is declared twice`);
    seen.add(s.name);
    secrets.push(
      s.tlsCertificate
        ? {
            name: s.name,
            kind: 'tls_certificate',
            certificateChainFile: p(s.tlsCertificate.certificateChainFile),
            privateKeyFile: p(s.tlsCertificate.privateKeyFile),
          }
        : { name: s.name, kind: 'validation_context', trustedCaFile: p(s.validationContext!.trustedCaFile) },
    );
  });

  // In Kubernetes a sidecar (Istio, Linkerd) delivers every peer from 127.0.0.1 or 127.0.0.6.
  const inKubernetes = root.kubernetes !== undefined || Boolean(env['KUBERNETES_SERVICE_HOST']);

  return {
    dataDir: p(root.dataDir ?? '.envoy-sds'),
    grpc,
    http,
    limits,
    validation: root.validation?.workers !== undefined ? { workers: root.validation.workers } : {},
    secrets,
    authorization: { rules: root.authorization?.rules ?? [] },
    logLevel: root.logLevel ?? 'info',
    trustLoopback: root.trustLoopback ?? !inKubernetes,
    drainSeconds: root.drainSeconds ?? 10,
    configDir: baseDir,
    ...(root.kubernetes !== undefined ? { kubernetes: root.kubernetes } : {}),
    ...(root.issuance !== undefined ? { issuance: root.issuance } : {}),
  };
}
