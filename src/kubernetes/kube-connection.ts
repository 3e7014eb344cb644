import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../config/config-error.js';

/**
 * Where the API server is and how to prove who we are. Credentials are read here and
 * never logged: the token and the client key stay inside this object and the client.
 */
export interface KubeConnection {
  /** https://host:port, no trailing slash. */
  server: string;
  /** PEM of the CA that signed the API server's certificate (undefined: system CAs). */
  caPem?: string;
  /** Skips server verification (kubeconfig insecure-skip-tls-verify). */
  insecureSkipTlsVerify?: boolean;
  /** A bearer token: fixed, or read from a file that is re-read (kubelet rotates it). */
  bearer?: { token: string } | { file: string };
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Namespace this process runs in (in-cluster) or the context's namespace. */
  namespace?: string;
  /** For messages: which kubeconfig or "in-cluster". */
  describe: string;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * An explicit kubeconfig path, else the in-cluster ServiceAccount when the pod has one,
 * else $KUBECONFIG or ~/.kube/config. Exec and auth-provider plugins are not supported:
 * the server runs in a pod (in-cluster) or is pointed at a token/cert kubeconfig.
 */
export function loadKubeConnection(opts: { kubeconfig?: string; context?: string }, at = 'kubernetes'): KubeConnection {
  if (opts.kubeconfig) return fromKubeconfig(opts.kubeconfig, opts.context, `${at}.kubeconfig`);
  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'];
  if (host && port && existsSync(`${SA_DIR}/token`)) return inCluster(host, port);
  const env = process.env['KUBECONFIG']?.split(':').find((p) => p.length > 0);
  const home = process.env['HOME'];
  const fallback = env ?? (home ? `${home}/.kube/config` : undefined);
  if (fallback && existsSync(fallback)) return fromKubeconfig(fallback, opts.context, `${at}.kubeconfig`);
  throw new ConfigError(`${at}.kubeconfig`, 'not running in a pod and no kubeconfig found (set kubernetes.kubeconfig or $KUBECONFIG)');
}

function inCluster(host: string, port: string): KubeConnection {
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const nsFile = `${SA_DIR}/namespace`;
  return {
    server: `https://${hostPart}:${port}`,
    caPem: readFileSync(`${SA_DIR}/ca.crt`, 'utf8'),
    bearer: { file: `${SA_DIR}/token` },
    ...(existsSync(nsFile) ? { namespace: readFileSync(nsFile, 'utf8').trim() } : {}),
    describe: 'in-cluster',
  };
}

export function fromKubeconfig(path: string, contextName: string | undefined, at: string): KubeConnection {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(at, `cannot read kubeconfig ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]})`);
  }
  const base = dirname(resolve(path));
  const file = (p: string): string => readFileSync(isAbsolute(p) ? p : resolve(base, p), 'utf8');
  const root = record(doc);
  const ctxName = contextName ?? stringField(root, 'current-context');
  if (!ctxName) throw new ConfigError(at, `${path} has no current-context`);
  const ctx = record(named(root['contexts'], ctxName)?.['context']);
  const cluster = record(named(root['clusters'], stringField(ctx, 'cluster') ?? '')?.['cluster']);
  const user = record(named(root['users'], stringField(ctx, 'user') ?? '')?.['user']);
  const server = stringField(cluster, 'server');
  if (!server) throw new ConfigError(at, `${path}: context "${ctxName}" has no cluster server`);
  if (user['exec'] !== undefined || user['auth-provider'] !== undefined) {
    throw new ConfigError(at, `${path}: exec and auth-provider credentials are not supported; use a token or client certificate`);
  }
  const b64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');
  const caData = stringField(cluster, 'certificate-authority-data');
  const caFile = stringField(cluster, 'certificate-authority');
  const token = stringField(user, 'token');
  const tokenFile = stringField(user, 'tokenFile');
  const certData = stringField(user, 'client-certificate-data');
  const certFile = stringField(user, 'client-certificate');
  const keyData = stringField(user, 'client-key-data');
  const keyFile = stringField(user, 'client-key');
  const caPem = caData ? b64(caData) : caFile ? file(caFile) : undefined;
  const clientCertPem = certData ? b64(certData) : certFile ? file(certFile) : undefined;
  const clientKeyPem = keyData ? b64(keyData) : keyFile ? file(keyFile) : undefined;
  const namespace = stringField(ctx, 'namespace');
  return {
    server: server.replace(/\/+$/, ''),
    ...(caPem ? { caPem } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(token ? { bearer: { token } } : tokenFile ? { bearer: { file: isAbsolute(tokenFile) ? tokenFile : resolve(base, tokenFile) } } : {}),
    ...(clientCertPem ? { clientCertPem } : {}),
    ...(clientKeyPem ? { clientKeyPem } : {}),
    ...(namespace ? { namespace } : {}),
    describe: path,
  };
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function stringField(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function named(list: unknown, name: string): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined;
  return list.map(record).find((e) => e['name'] === name);
}
