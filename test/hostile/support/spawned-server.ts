// The built CLI (`envoy-sds serve --config`) as a separate process, for attacks that
// must be seen from outside: is the process alive, how big did it get, how much did it
// log. HOSTILE_CLI points at another build (e.g. the base commit's) to measure "before".
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const CLI = resolve(process.env['HOSTILE_CLI'] ?? 'dist/src/cli.js');

export interface SpawnOptions {
  /** Config document (written as JSON, which is YAML); grpc/http addresses default to port 0. */
  config: Record<string, unknown>;
  /** A temp directory for the config file and the Unix socket. */
  dir: string;
  /** `ulimit -n` for the server process (it is started through bash for this). */
  fdLimit?: number;
  startTimeoutMs?: number;
  /** Wait only for the TCP listener (some attacks stop the HTTP one from starting on old builds). */
  waitForHttp?: boolean;
}

/** Log text kept for searching; past this, lines are only counted (a flood must not fill the test's memory). */
const KEEP_LOG_BYTES = 32 * 1024 * 1024;

export class SpawnedServer {
  grpc = '';
  unix = '';
  http = '';
  private logBytes = 0;
  private kept = '';
  private partial = '';
  private lineCount = 0;
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  stderr = '';

  constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((r) =>
      proc.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        r(code);
      }),
    );
    proc.stdout!.on('data', (d: Buffer) => this.onLog(d));
    proc.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < 1_000_000) this.stderr += d.toString();
    });
  }

  private onLog(d: Buffer): void {
    this.logBytes += d.length;
    const text = this.partial + d.toString();
    const cut = text.lastIndexOf('\n');
    this.partial = text.slice(cut + 1);
    if (cut < 0) return;
    const complete = text.slice(0, cut + 1);
    for (let i = complete.indexOf('\n'); i >= 0; i = complete.indexOf('\n', i + 1)) this.lineCount++;
    if (this.kept.length < KEEP_LOG_BYTES) this.kept += complete;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The process has not exited. */
  alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Bytes written to the log (stdout) so far. */
  get logSize(): number {
    return this.logBytes;
  }

  get logLineCount(): number {
    return this.lineCount;
  }

  /** Parsed log lines (of the first 32 MB). */
  logs(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of this.kept.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by the keep limit
      }
    }
    return out;
  }

  /** Resident set size now, in bytes (from /proc). */
  rss(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status);
    return kb ? Number(kb[1]) * 1024 : 0;
  }

  async get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${this.http}${path}`);
    return { status: res.status, body: await res.text() };
  }

  /** Sends SIGTERM and waits for the exit; resolves to whether it exited within `timeoutMs`. */
  async terminate(timeoutMs = 15_000): Promise<boolean> {
    if (!this.alive()) return true;
    this.proc.kill('SIGTERM');
    const timer = new Promise<false>((r) => setTimeout(() => r(false), timeoutMs).unref());
    return Promise.race([this.exited.then(() => true as const), timer]);
  }

  /** Ends the process whatever state it is in (test cleanup). */
  kill(): void {
    if (this.alive()) this.proc.kill('SIGKILL');
  }
}

export async function spawnServer(opts: SpawnOptions): Promise<SpawnedServer> {
  const configPath = join(opts.dir, 'config.yaml');
  const config = {
    grpc: { tcp: { address: '127.0.0.1:0' }, unix: { path: join(opts.dir, 'sds.sock') } },
    http: { address: '127.0.0.1:0' },
    drainSeconds: 2,
    ...opts.config,
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const node = [process.execPath, CLI, 'serve', '--config', configPath];
  const proc =
    opts.fdLimit === undefined
      ? spawn(node[0]!, node.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
      : // exec: the server is the bash process itself, so its pid is the one measured.
        spawn('bash', ['-c', `ulimit -n ${opts.fdLimit} && exec "$@"`, 'bash', ...node], { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new SpawnedServer(proc);
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  const waitHttp = opts.waitForHttp ?? true;
  for (;;) {
    const logs = server.logs();
    const tcp = logs.find((l) => l['msg'] === 'SDS listening on TCP');
    const unix = logs.find((l) => l['msg'] === 'SDS listening on Unix socket');
    const http = logs.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('HTTP listening'));
    if (tcp && (!waitHttp || http)) {
      server.grpc = String(tcp['address']);
      server.unix = unix ? String(unix['path']) : '';
      server.http = http ? String(http['address']) : '';
      return server;
    }
    if (!server.alive()) throw new Error(`server exited before listening: ${server.stderr.slice(0, 2000)}`);
    if (Date.now() > deadline) {
      server.kill();
      throw new Error(`server did not listen within ${opts.startTimeoutMs ?? 30_000} ms`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
