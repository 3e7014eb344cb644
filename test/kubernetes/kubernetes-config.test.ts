// The `kubernetes:` config section, kubeconfig loading, SPIFFE IDs, backoff and the
// decision cache: the small pure parts of the Kubernetes component.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DecisionCache } from '../../src/authz/kubernetes/decision-cache.js';
import { serviceAccountFromSpiffe } from '../../src/authz/kubernetes/spiffe-service-account.js';
import { ConfigError } from '../../src/config/config-error.js';
import { fromKubeconfig } from '../../src/kubernetes/kube-connection.js';
import { parseKubernetesConfig } from '../../src/config/kubernetes-config.js';
import { Backoff } from '../../src/kubernetes/backoff.js';

test('kubernetes config: defaults, and errors that name the field', () => {
  const c = parseKubernetesConfig({});
  assert.deepEqual(c.namespaces, []);
  assert.deepEqual(c.configMapKeys, ['ca.crt']);
  assert.deepEqual(c.authentication.audiences, ['envoy-sds']);
  assert.equal(c.authorization.allowCacheMs, 30_000);
  assert.equal(c.authorization.denyCacheMs, 5_000);
  assert.equal(parseKubernetesConfig(null).watch.silentMs, 120_000);
  const bad: Array<[unknown, string]> = [
    [{ namespace: ['a'] }, 'kubernetes.namespace'],
    [{ namespaces: ['Not_A_Namespace'] }, 'kubernetes.namespaces[0]'],
    [{ authorization: { allowCacheSeconds: -1 } }, 'kubernetes.authorization.allowCacheSeconds'],
    [{ authentication: { audiences: [] } }, 'kubernetes.authentication.audiences'],
    [{ watch: { backoffInitialSeconds: 5, backoffMaxSeconds: 1 } }, 'kubernetes.watch.backoffMaxSeconds'],
    ['yes', 'kubernetes'],
  ];
  for (const [raw, field] of bad) {
    assert.throws(
      () => parseKubernetesConfig(raw),
      (err: unknown) => err instanceof ConfigError && err.field === field,
      field,
    );
  }
});

test('kubeconfig: token and CA from the current context; exec plugins taken; no credentials refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sds-kubeconfig-'));
  try {
    const path = join(dir, 'config');
    const ca = Buffer.from('CA PEM').toString('base64');
    writeFileSync(
      path,
      `apiVersion: v1
clusters: [{ name: c, cluster: { server: "https://k:6443/", certificate-authority-data: ${ca} } }]
users: [{ name: u, user: { token: t0k } }, { name: e, user: { exec: { command: x, apiVersion: client.authentication.k8s.io/v1 } } }, { name: none, user: {} }]
contexts: [{ name: a, context: { cluster: c, user: u, namespace: apps } }, { name: b, context: { cluster: c, user: e } }, { name: n, context: { cluster: c, user: none } }]
current-context: a
`,
    );
    const conn = fromKubeconfig(path, undefined, 'kubernetes.kubeconfig');
    assert.equal(conn.server, 'https://k:6443');
    const creds = await conn.credentials();
    assert.equal(String(creds.tls.ca), 'CA PEM');
    assert.equal(creds.headers['authorization'], 'Bearer t0k');
    assert.equal(conn.namespace, 'apps');
    assert.doesNotMatch(conn.describe, /t0k/, 'no credential in messages');
    assert.equal(fromKubeconfig(path, 'b', 'kubernetes.kubeconfig').server, 'https://k:6443', 'an exec plugin is a credential');
    assert.throws(
      () => fromKubeconfig(path, 'n', 'kubernetes.kubeconfig'),
      (err: unknown) => err instanceof ConfigError && /resolves to no credentials .*refusing to connect as anonymous/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("kubeconfig: kubectl's tokenFile, relative to the kubeconfig, is read for the Authorization header", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sds-kubeconfig-'));
  try {
    writeFileSync(join(dir, 'token'), 'from-file\n');
    const path = join(dir, 'config');
    writeFileSync(
      path,
      `apiVersion: v1
clusters: [{ name: c, cluster: { server: "https://k:6443" } }]
users: [{ name: u, user: { tokenFile: token } }]
contexts: [{ name: a, context: { cluster: c, user: u } }]
current-context: a
`,
    );
    const creds = await fromKubeconfig(path, undefined, 'kubernetes.kubeconfig').credentials();
    assert.equal(creds.headers['authorization'], 'Bearer from-file', 'the newline a file ends in is not sent');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SPIFFE IDs name a ServiceAccount only in our trust domain', () => {
  assert.deepEqual(serviceAccountFromSpiffe(['spiffe://cluster.local/ns/gateway/sa/gw'], 'cluster.local'), {
    namespace: 'gateway',
    name: 'gw',
  });
  for (const uri of [
    'spiffe://evil.example/ns/gateway/sa/gw',
    'spiffe://cluster.local/ns/gateway/sa/',
    'spiffe://cluster.local/ns/gateway/sa/gw/extra',
    'spiffe://cluster.local.evil/ns/a/sa/b',
  ]) {
    assert.equal(serviceAccountFromSpiffe([uri], 'cluster.local'), undefined, uri);
  }
});

test('backoff doubles up to its cap, with jitter in [cap/2, cap], and resets', () => {
  const b = new Backoff(100, 1000, () => 1);
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
  b.reset();
  assert.equal(new Backoff(100, 1000, () => 0).next(), 50);
  assert.equal(b.next(), 100);
});

test('decision cache: fresh within the TTL, recent within a bound, oldest evicted first', () => {
  let now = 0;
  const c = new DecisionCache<boolean>(2, () => now);
  c.set('a', true, 100);
  now = 50;
  assert.equal(c.fresh('a'), true);
  now = 150;
  assert.equal(c.fresh('a'), undefined);
  assert.equal(c.recent('a', 200), true);
  assert.equal(c.recent('a', 100), undefined);
  c.set('b', false, 10);
  c.set('c', false, 10);
  assert.equal(c.size, 2);
  assert.equal(c.recent('a', 1000), undefined, 'evicted');
});
