// The connection to a real kube-apiserver through client-node's KubeConfig: an exec
// credential plugin (as EKS, GKE, AKS and OIDC users have), a $KUBECONFIG of two files
// whose context and user live in different files, and a kubeconfig that resolves to no
// credentials, which is an error rather than a silent system:anonymous.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { KubeClient } from '../../src/kubernetes/kube-client.js';
import { fromKubeconfig, loadKubeConnection } from '../../src/kubernetes/kube-connection.js';
import type { KubeCluster } from '../harness/kube-cluster.js';
import { makeCa, makeClientCert } from '../support/openssl-certs.js';
import { b64, clusterWithAdmin } from './kube-test-env.js';

/** Who the API server takes the caller for. */
async function whoAmI(client: KubeClient): Promise<string | undefined> {
  const r = await client.request<{ status?: { userInfo?: { username?: string } } }>(
    'POST',
    '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    },
  );
  return r.status?.userInfo?.username;
}

const clusterPart = (c: KubeCluster) => [
  'clusters:',
  '- name: test',
  '  cluster:',
  `    server: ${c.server}`,
  `    certificate-authority-data: ${b64(c.caPem)}`,
];

/** Runs `fn` with these environment variables, restoring them after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v))
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
  };
  set(vars);
  try {
    return await fn();
  } finally {
    set(saved);
  }
}

describe('Kubernetes credentials through KubeConfig', () => {
  test('exec plugin, client certificate files, a two-file $KUBECONFIG; no credentials refused', async (t) => {
    const clientCa = makeCa('API client CA');
    const caDir = mkdtempSync(join(tmpdir(), 'sds-client-ca-'));
    t.after(() => rmSync(caDir, { recursive: true, force: true }));
    writeFileSync(join(caDir, 'client-ca.crt'), clientCa.certPem);
    const env = await clusterWithAdmin(t, { extraApiServerArgs: [`--client-ca-file=${join(caDir, 'client-ca.crt')}`] });
    if (!env) return;

    await t.test('an exec credential plugin: its token is used, and the plugin runs once while the credential is valid', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'sds-exec-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const runs = join(dir, 'runs');
      writeFileSync(runs, '');
      const plugin = join(dir, 'credential-plugin.sh');
      const expires = new Date(Date.now() + 3_600_000).toISOString();
      writeFileSync(
        plugin,
        `#!/bin/sh\necho run >> '${runs}'\nprintf '%s' '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${env.cluster.adminToken}","expirationTimestamp":"${expires}"}}'\n`,
      );
      chmodSync(plugin, 0o700);
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        [
          'apiVersion: v1',
          'kind: Config',
          ...clusterPart(env.cluster),
          'users:',
          '- name: exec-user',
          '  user:',
          '    exec:',
          '      apiVersion: client.authentication.k8s.io/v1',
          `      command: ${plugin}`,
          '      interactiveMode: Never',
          'contexts:',
          '- name: test',
          '  context: { cluster: test, user: exec-user }',
          'current-context: test',
          '',
        ].join('\n'),
      );
      const client = new KubeClient(fromKubeconfig(kubeconfig, undefined, 'kubernetes.kubeconfig'));
      t.after(() => client.close());
      assert.equal(await whoAmI(client), 'admin');
      await client.request('GET', '/api/v1/namespaces');
      assert.equal(readFileSync(runs, 'utf8').trim().split('\n').length, 1, 'the credential is cached until it expires');
    });

    await t.test('client certificate files, relative to the kubeconfig', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'sds-certs-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const pair = makeClientCert(clientCa, 'DNS:gateway.example');
      writeFileSync(join(dir, 'client.crt'), pair.certPem);
      writeFileSync(join(dir, 'client.key'), pair.keyPem, { mode: 0o600 });
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        [
          'apiVersion: v1',
          'kind: Config',
          ...clusterPart(env.cluster),
          'users:',
          '- name: cert',
          '  user: { client-certificate: client.crt, client-key: client.key }',
          'contexts:',
          '- name: test',
          '  context: { cluster: test, user: cert }',
          'current-context: test',
          '',
        ].join('\n'),
      );
      const client = new KubeClient(fromKubeconfig(kubeconfig, undefined, 'kubernetes.kubeconfig'));
      t.after(() => client.close());
      assert.equal(await whoAmI(client), 'gateway', 'the certificate subject');
    });

    await t.test('a $KUBECONFIG of two files: the context in the first, its user in the second', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'sds-kubeconfig-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const first = join(dir, 'clusters');
      const second = join(dir, 'users');
      writeFileSync(
        first,
        [
          'apiVersion: v1',
          'kind: Config',
          ...clusterPart(env.cluster),
          'contexts:',
          '- name: test',
          '  context: { cluster: test, user: admin }',
          'current-context: test',
          '',
        ].join('\n'),
      );
      writeFileSync(
        second,
        ['apiVersion: v1', 'kind: Config', 'users:', '- name: admin', '  user:', `    token: ${env.cluster.adminToken}`, ''].join('\n'),
      );

      const both = await withEnv(
        { KUBECONFIG: `${first}:${join(dir, 'missing')}:${second}`, KUBERNETES_SERVICE_HOST: undefined },
        async () => loadKubeConnection({}),
      );
      const client = new KubeClient(both);
      t.after(() => client.close());
      assert.equal(await whoAmI(client), 'admin', 'the user from the second file, not system:anonymous');

      // The first file alone names a user it does not define: refused, never anonymous.
      await withEnv({ KUBECONFIG: first, KUBERNETES_SERVICE_HOST: undefined }, async () => {
        assert.throws(
          () => loadKubeConnection({}),
          (err: unknown) =>
            err instanceof ConfigError &&
            err.field === 'kubernetes.kubeconfig' &&
            /resolves to no credentials .*refusing to connect as anonymous/.test(err.message) &&
            !err.message.includes(env.cluster.adminToken),
        );
      });
    });
  });
});
