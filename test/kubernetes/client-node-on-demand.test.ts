// @kubernetes/client-node costs about 25 MB of heap and 0.4 s to load: a server without a
// Kubernetes source never loads it, and the first Kubernetes connection does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const src = (path: string): string => JSON.stringify(new URL(`../../src/${path}`, import.meta.url).href);

/** Runs `body` (an ES module) in a child that records every module specifier resolved. */
function resolvedBy(body: string): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ resolve(specifier, context, next) { seen.push(specifier); return next(specifier, context); } });
    ${body}
    process.stdout.write(JSON.stringify(seen));
    process.exit(0);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: '' },
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as string[];
}

test('a server with file sources only never loads client-node', () => {
  const seen = resolvedBy(`
    const { parseConfig } = await import(${src('config/server-config.js')});
    const { startServer } = await import(${src('main.js')});
    const config = parseConfig({ grpc: { tcp: { address: '127.0.0.1:0' } }, http: null, logLevel: 'silent' }, process.cwd());
    const server = await startServer(config, {});
    await server.stop();`);
  assert.ok(
    seen.some((s) => s.endsWith('/main.js')),
    'the server was loaded',
  );
  assert.ok(!seen.includes('@kubernetes/client-node'), 'client-node was loaded');
});

test('the first Kubernetes connection loads client-node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  try {
    const kubeconfig = join(dir, 'config');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    const seen = resolvedBy(`
      const { fromKubeconfig } = await import(${src('kubernetes/kube-connection.js')});
      const conn = fromKubeconfig(${JSON.stringify(kubeconfig)}, undefined, 'test');
      if (conn.server !== 'https://127.0.0.1:6443') throw new Error(conn.server);`);
    assert.ok(seen.includes('@kubernetes/client-node'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
