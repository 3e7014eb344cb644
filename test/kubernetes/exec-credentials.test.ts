// Exec credential plugins as the connection runs them, without an API server: one plugin
// process however many requests wait on it, and a plugin's malformed output never
// quoted into an error message (it may hold the credential).

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KubeClient } from '../../src/kubernetes/kube-client.js';
import { fromKubeconfig } from '../../src/kubernetes/kube-connection.js';
import { KubeUnreachableError } from '../../src/kubernetes/kube-errors.js';

function kubeconfigWithPlugin(dir: string, script: string): string {
  const plugin = join(dir, 'plugin.sh');
  writeFileSync(plugin, `#!/bin/sh\n${script}\n`);
  chmodSync(plugin, 0o700);
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]',
      `users: [{ name: u, user: { exec: { apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, interactiveMode: Never } } }]`,
      'contexts: [{ name: c, context: { cluster: c, user: u } }]',
      'current-context: c',
      '',
    ].join('\n'),
  );
  return path;
}

test('a slow plugin runs once for all the requests waiting on it; each request keeps its own deadline', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sds-exec-slow-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const runs = join(dir, 'runs');
  const credential = '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t"}}';
  const client = new KubeClient(
    fromKubeconfig(kubeconfigWithPlugin(dir, `echo run >> '${runs}'\nsleep 1\nprintf '%s' '${credential}'`), undefined, 'test'),
    { requestTimeoutMs: 200 },
  );
  t.after(() => client.close());
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => client.request('GET', '/api')));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof KubeUnreachableError && /none within 200 ms/.test(r.reason.message), String(r.reason));
  }
  assert.equal(readFileSync(runs, 'utf8').trim().split('\n').length, 1, 'one plugin process');
});

test("a plugin's output that is not JSON is not quoted in the error", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sds-exec-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const conn = fromKubeconfig(kubeconfigWithPlugin(dir, "printf '%s' 'token=SECRET-TOKEN-1234 not json'"), undefined, 'test');
  await assert.rejects(conn.credentials(), (err: Error) => /not an ExecCredential/.test(err.message) && !err.message.includes('SECRET'));
});
