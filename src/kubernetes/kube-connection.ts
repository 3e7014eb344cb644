// Where the API server is and how to prove who we are, through @kubernetes/client-node's
// KubeConfig: exec credential plugins (EKS, GKE, AKS, OIDC), auth providers, client
// certificates, tokens and token files, a merged $KUBECONFIG, in-cluster. Our KubeClient
// still makes the requests (its deadlines, streamed lists and watches); it asks this for
// each request's credentials. Credentials stay inside this object and the request.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, delimiter, isAbsolute, resolve } from 'node:path';
import type { RequestOptions } from 'node:https';
import { KubeConfig, type User } from '@kubernetes/client-node';
import { parse as parseYaml, stringify } from 'yaml';
import { ConfigError } from '../config/config-error.js';

/** What one request needs: headers (Authorization, impersonation) and TLS options. */
export interface RequestCredentials {
  headers: Record<string, string>;
  tls: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>;
}

export interface KubeConnection {
  /** https://host:port, no trailing slash. */
  server: string;
  /** Namespace this process runs in (in-cluster) or the context's namespace. */
  namespace?: string;
  /** For messages: which kubeconfig (or "in-cluster"), context and user; never a credential. */
  describe: string;
  /**
   * Credentials for the next request. An exec plugin runs on the first call and again
   * when its credential expires (the library caches it); a token file is re-read.
   */
  credentials(): Promise<RequestCredentials>;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * An explicit kubeconfig path, else the in-cluster ServiceAccount when the pod has one,
 * else every file of $KUBECONFIG merged as kubectl merges them, else ~/.kube/config.
 */
export function loadKubeConnection(opts: { kubeconfig?: string; context?: string }, at = 'kubernetes'): KubeConnection {
  if (opts.kubeconfig) return fromKubeconfig(opts.kubeconfig, opts.context, `${at}.kubeconfig`);
  if (process.env['KUBERNETES_SERVICE_HOST'] && process.env['KUBERNETES_SERVICE_PORT'] && existsSync(`${SA_DIR}/token`)) {
    const kc = new KubeConfig();
    kc.loadFromCluster();
    return connection(kc, 'in-cluster', `${at}.kubeconfig`);
  }
  const paths = (process.env['KUBECONFIG'] ?? '').split(delimiter).filter((p) => p.length > 0);
  const home = process.env['HOME'];
  const candidates = paths.length > 0 ? paths : home ? [`${home}/.kube/config`] : [];
  // kubectl skips $KUBECONFIG entries that do not exist.
  const present = candidates.filter((p) => existsSync(p));
  if (present.length === 0)
    throw new ConfigError(`${at}.kubeconfig`, 'not running in a pod and no kubeconfig found (set kubernetes.kubeconfig or $KUBECONFIG)');
  return fromKubeconfigs(present, opts.context, `${at}.kubeconfig`);
}

export function fromKubeconfig(path: string, contextName: string | undefined, at: string): KubeConnection {
  return fromKubeconfigs([path], contextName, at);
}

/** Several kubeconfig files merged as kubectl does: the first file to set a name or current-context wins. */
export function fromKubeconfigs(paths: readonly string[], contextName: string | undefined, at: string): KubeConnection {
  const merged = {
    clusters: [] as KubeConfig['clusters'],
    users: [] as KubeConfig['users'],
    contexts: [] as KubeConfig['contexts'],
    currentContext: '',
  };
  const first = <T extends { name: string }>(into: T[], from: T[]) =>
    from.forEach((e) => into.some((x) => x.name === e.name) || into.push(e));
  for (const path of paths) {
    const kc = loadFile(path, at);
    first(merged.clusters, kc.clusters);
    first(merged.users, kc.users);
    first(merged.contexts, kc.contexts);
    merged.currentContext ||= kc.currentContext;
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({ ...merged, currentContext: contextName ?? merged.currentContext });
  return connection(kc, paths.join(delimiter), at);
}

function loadFile(path: string, at: string): KubeConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(
      at,
      `cannot read kubeconfig ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]})`,
    );
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromString(stringify(withTokenFiles(doc, dirname(resolve(path)))));
    kc.makePathsAbsolute(dirname(resolve(path)));
  } catch (err) {
    throw new ConfigError(at, `${path}: ${(err as Error).message}`);
  }
  return kc;
}

/**
 * kubectl's `tokenFile` (client-node reads only its own `token-file`, once) as the
 * library's token-file auth provider, which re-reads it: the kubelet rotates projected
 * tokens.
 */
function withTokenFiles(doc: unknown, base: string): unknown {
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { users?: unknown }).users)) return doc;
  const users = (doc as { users: unknown[] }).users.map((entry) => {
    const user = (entry as { user?: Record<string, unknown> }).user;
    const file = user?.['tokenFile'];
    if (typeof file !== 'string' || user?.['token'] !== undefined) return entry;
    const { tokenFile: _, ...rest } = user!;
    return {
      ...(entry as object),
      user: { ...rest, 'auth-provider': { name: 'tokenFile', config: { tokenFile: isAbsolute(file) ? file : resolve(base, file) } } },
    };
  });
  return { ...doc, users };
}

function hasCredentials(user: User): boolean {
  return Boolean(
    user.token || user.authProvider || user.exec || user.username || ((user.certData || user.certFile) && (user.keyData || user.keyFile)),
  );
}

function connection(kc: KubeConfig, source: string, at: string): KubeConnection {
  const contextName = kc.getCurrentContext();
  if (!contextName) throw new ConfigError(at, `${source} has no current-context`);
  const context = kc.getContextObject(contextName);
  if (!context) throw new ConfigError(at, `${source}: context "${contextName}" is not defined`);
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new ConfigError(at, `${source}: context "${contextName}" has no cluster server`);
  const user = kc.getCurrentUser();
  // Without credentials the API server would take us for system:anonymous: never ready, and no warning.
  if (!user || !hasCredentials(user)) {
    throw new ConfigError(
      at,
      `${source}: context "${contextName}" resolves to no credentials (user "${context.user ?? ''}" has no token, client certificate, exec plugin or auth provider); refusing to connect as anonymous`,
    );
  }
  let pending: Promise<RequestCredentials> | undefined;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ...(context.namespace ? { namespace: context.namespace.trim() } : {}),
    describe: `${source} (context ${contextName}, user ${user.name})`,
    // One credential lookup at a time: a plugin that hangs (the library sets it no
    // deadline) is one process, not one per request.
    credentials: () => (pending ??= requestCredentials(kc).finally(() => (pending = undefined))),
  };
}

async function requestCredentials(kc: KubeConfig): Promise<RequestCredentials> {
  const opts: RequestOptions = { headers: {} };
  try {
    await kc.applyToHTTPSOptions(opts);
  } catch (err) {
    // JSON.parse quotes the text it failed on, which could be a plugin's credential.
    // eslint-disable-next-line preserve-caught-error -- the cause may quote the credential
    throw new Error(
      err instanceof SyntaxError
        ? 'the credential plugin printed something that is not an ExecCredential (JSON)'
        : (err as Error).message.split('\n')[0]!.slice(0, 300),
    );
  }
  const headers: Record<string, string> = {};
  // A token file usually ends in a newline, which a header may not hold.
  for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === 'string') headers[k.toLowerCase()] = v.trim();
  if (opts.auth) headers['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  return {
    headers,
    tls: {
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.cert ? { cert: opts.cert } : {}),
      ...(opts.key ? { key: opts.key } : {}),
      ...(opts.servername ? { servername: opts.servername } : {}),
      rejectUnauthorized: opts.rejectUnauthorized !== false,
    },
  };
}
