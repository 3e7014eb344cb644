// Shared pieces of the ACME/DNS harness: finding the server binaries, free loopback
// ports, and a child process that is always stopped (also when the test process dies).

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

export interface Tool {
  binary: string;
  /** Debian package that ships it. */
  apt: string;
}

export const NAMED: Tool = { binary: 'named', apt: 'bind9' };
export const PEBBLE: Tool = { binary: 'pebble', apt: 'pebble' };

const SEARCH_PATH = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of the binary, or undefined. */
export function findTool(tool: Tool): string | undefined {
  for (const dir of SEARCH_PATH) {
    if (dir === '') continue;
    const candidate = join(dir, tool.binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export function requireTool(tool: Tool): string {
  const path = findTool(tool);
  if (path === undefined) {
    throw new Error(
      `'${tool.binary}' not found on PATH or in /usr/sbin: install the Debian package ${tool.apt} (apt-get install -y ${tool.apt})`,
    );
  }
  return path;
}

/**
 * For `test(name, { skip: skipUnlessTools(...) }, fn)`: a skip reason when a tool is
 * missing on a developer machine. Under CI=true it never skips: the test runs and fails
 * with requireTool's message, as the project's rule says.
 */
export function skipUnlessTools(...tools: Tool[]): string | false {
  const missing = tools.filter((t) => findTool(t) === undefined);
  if (missing.length === 0 || process.env.CI === 'true') return false;
  return `missing ${missing.map((t) => `${t.binary} (Debian package ${t.apt})`).join(', ')}`;
}

function listenTcp(port: number): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('no TCP address'));
        return;
      }
      resolve({ port: address.port, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

function bindUdp(port: number): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind({ address: '127.0.0.1', port, exclusive: true }, () => resolve(() => new Promise((r) => socket.close(() => r()))));
  });
}

/** A loopback port free right now for TCP (and UDP too, when asked). */
export async function freePort(opts: { udp?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = await listenTcp(0);
    try {
      if (!opts.udp) return tcp.port;
      const closeUdp = await bindUdp(tcp.port).catch(() => undefined);
      if (closeUdp) {
        await closeUdp();
        return tcp.port;
      }
    } finally {
      await tcp.close();
    }
  }
  throw new Error('no free loopback port for TCP and UDP after 20 attempts');
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Last 64 KiB of stdout and stderr, interleaved. */
  output(): string;
  exited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function startProcess(command: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): ServerProcess {
  const child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let log = '';
  let exited = false;
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-65536);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const gone = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      running.delete(child);
      log += `\n[${command} exited with ${signal ?? `code ${code}`}]`;
      resolve();
    });
    child.once('error', (err) => {
      exited = true;
      running.delete(child);
      log += `\n[${command} failed to start: ${err.message}]`;
      resolve();
    });
  });
  return {
    child,
    output: () => log,
    exited: () => exited,
    async stop(graceMs = 5000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it resolves true; fails early when the process exits. */
export async function waitUntil(what: string, proc: ServerProcess, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (proc.exited()) throw new Error(`${what} exited during startup:\n${proc.output().slice(-4000)}`);
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const reason = lastError instanceof Error ? ` (last probe error: ${lastError.message})` : '';
  throw new Error(`${what} not ready within ${timeoutMs} ms${reason}:\n${proc.output().slice(-4000)}`);
}
