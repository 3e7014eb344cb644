import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { errorFromStatus, KubeApiError, KubeUnreachableError } from './kube-errors.js';
import type { KubeConnection, RequestCredentials } from './kube-connection.js';
import { ListItemSplitter } from './list-item-splitter.js';

/** One line of a watch response. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, unknown>;
}

export interface WatchHandle {
  /** Resolves when the server ends the watch (timeoutSeconds, shutdown); rejects on errors. */
  readonly done: Promise<void>;
  /** Ends the watch from our side; `done` then resolves. */
  abort(): void;
}

export interface KubeClientOptions {
  /** Deadline of one non-watch request. Default 10 s. */
  requestTimeoutMs?: number;
}

/**
 * The few calls the server needs (list, watch, create), as JSON over HTTPS with node's own
 * https module rather than @kubernetes/client-node: its informer stops on errors and leaves restarts, 410 re-lists and silent
 * watches to the caller (ResourceInformer does them here), and we want a deadline on
 * every request. Credentials (exec plugins, token files, client certificates) come from
 * the connection, per request.
 */
export class KubeClient {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(
    private readonly conn: KubeConnection,
    opts: KubeClientOptions = {},
  ) {
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.agent = new Agent({
      keepAlive: true,
      // Keep-alive probes notice a peer that vanished without a FIN (node crash,
      // partition) on idle sockets; the informer's silent-watch timer covers watches.
      keepAliveMsecs: 30_000,
    });
  }

  get server(): string {
    return this.conn.server;
  }

  /** GET/POST/PUT/DELETE with a JSON body; the parsed JSON answer, or a KubeApiError. */
  async request<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    opts: { body?: unknown; query?: Record<string, string | number | boolean | undefined>; contentType?: string } = {},
  ): Promise<T> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const res = await this.send(method, withQuery(path, opts.query), headers, payload, this.timeoutMs);
    const text = await readBody(res);
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : {};
    } catch {
      throw new KubeApiError(res.statusCode ?? 0, '', `${method} ${path}: HTTP ${res.statusCode} with a body that is not JSON`);
    }
    if ((res.statusCode ?? 0) >= 300) throw errorFromStatus(res.statusCode ?? 0, json);
    return json as T;
  }

  /**
   * GET of a list, streamed: `onItem` gets each element of `items` as soon as it is parsed
   * (and should keep only what it needs of it); resolves with the list's envelope
   * (metadata: resourceVersion, continue). The page is never held whole in memory.
   */
  async list(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onItem: (item: Record<string, unknown>) => void,
  ): Promise<{ metadata?: { resourceVersion?: string; continue?: string } }> {
    let req: ClientRequest | undefined;
    const res = await this.send('GET', withQuery(path, query), { accept: 'application/json' }, undefined, this.timeoutMs, (r) => {
      req = r;
    });
    if ((res.statusCode ?? 0) >= 300) throw await errorFromResponse(res);
    const splitter = new ListItemSplitter(onItem);
    return new Promise((resolve, reject) => {
      res.on('data', (chunk: Buffer) => {
        try {
          splitter.write(chunk);
        } catch (err) {
          req?.destroy();
          res.destroy();
          reject(err instanceof SyntaxError ? new KubeUnreachableError(`GET ${path}: list response is not JSON`) : (err as Error));
        }
      });
      res.once('end', () => {
        try {
          resolve(splitter.end());
        } catch {
          reject(new KubeUnreachableError(`GET ${path}: list response ended early`));
        }
      });
      res.once('error', (err) => reject(unreachable(err)));
      res.once('close', () => {
        if (!res.complete) reject(new KubeUnreachableError(`GET ${path}: connection closed mid-list`));
      });
    });
  }

  /**
   * Starts a watch (GET with watch=true) and calls onEvent for every line. `done` rejects
   * with a KubeApiError when the request itself fails (e.g. 403) and with a
   * KubeUnreachableError when the connection breaks.
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (ev: WatchEvent) => void,
  ): Promise<WatchHandle> {
    let req: ClientRequest | undefined;
    let aborted = false;
    const res = await this.send(
      'GET',
      withQuery(path, { ...query, watch: true }),
      { accept: 'application/json' },
      undefined,
      this.timeoutMs,
      (r) => {
        req = r;
      },
    );
    if ((res.statusCode ?? 0) >= 300) throw await errorFromResponse(res);
    // The response is open now: from here on only our abort or the server ends it.
    res.socket?.setTimeout(0);
    const done = new Promise<void>((resolve, reject) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line.length === 0) continue;
          let ev: WatchEvent;
          try {
            ev = JSON.parse(line) as WatchEvent;
          } catch {
            req?.destroy();
            reject(new KubeUnreachableError('watch stream carried a line that is not JSON'));
            return;
          }
          onEvent(ev);
        }
      });
      res.once('end', () => resolve());
      res.once('error', (err) => (aborted ? resolve() : reject(unreachable(err))));
      res.once('close', () => (aborted || res.complete ? resolve() : reject(new KubeUnreachableError('watch connection closed'))));
    });
    return {
      done,
      abort: () => {
        aborted = true;
        req?.destroy();
        res.destroy();
      },
    };
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }

  private async send(
    method: string,
    path: string,
    headers: Record<string, string>,
    payload: Buffer | undefined,
    timeoutMs: number,
    onRequest?: (req: ClientRequest) => void,
  ): Promise<IncomingMessage> {
    const url = new URL(this.conn.server + path);
    let creds: RequestCredentials;
    try {
      creds = await withDeadline(this.conn.credentials(), timeoutMs, `credentials from ${this.conn.describe}: none within ${timeoutMs} ms`);
    } catch (err) {
      if (err instanceof KubeUnreachableError) throw err;
      // An exec plugin that failed, a token file that went away: the API is unusable until fixed.
      throw new KubeUnreachableError(`credentials from ${this.conn.describe}: ${(err as Error).message.split('\n')[0]}`);
    }
    // The agent pools sockets per TLS identity, so per-request TLS options are safe with it.
    const options: RequestOptions = {
      method,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port,
      path: url.pathname + url.search,
      headers: { ...creds.headers, ...headers },
      agent: this.agent,
      ...creds.tls,
    };
    return new Promise((resolve, reject) => {
      const req = httpsRequest(options, resolve);
      onRequest?.(req);
      // Until the response headers arrive; a watch clears it once it is open.
      req.setTimeout(timeoutMs, () => req.destroy(new KubeUnreachableError(`${method} ${url.pathname}: no answer within ${timeoutMs} ms`)));
      req.once('error', (err) => reject(unreachable(err)));
      req.end(payload);
    });
  }
}

/** An exec plugin that hangs must not hang the request with it. */
function withDeadline<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KubeUnreachableError(message)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function unreachable(err: unknown): Error {
  if (err instanceof KubeUnreachableError || err instanceof KubeApiError) return err;
  const e = err as NodeJS.ErrnoException;
  return new KubeUnreachableError(`Kubernetes API unreachable: ${e.code ?? e.message}`, { cause: err });
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', (err) => reject(unreachable(err)));
  });
}

function withQuery(path: string, query: Record<string, string | number | boolean | undefined> | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const q = params.toString();
  return q ? `${path}${path.includes('?') ? '&' : '?'}${q}` : path;
}

/** The API server's error for a failed response (its Status body when it sent one). */
async function errorFromResponse(res: IncomingMessage): Promise<KubeApiError> {
  const text = await readBody(res);
  let json: unknown = {};
  try {
    json = JSON.parse(text);
  } catch {
    /* a proxy's HTML error page: the HTTP status says enough */
  }
  return errorFromStatus(res.statusCode ?? 0, json);
}
