// Issuers and ClusterIssuers have a Ready condition as cert-manager's do: a CA issuer is
// ready once its key pair verifies (KeyPairVerified), not ready while its Secret is
// missing (ErrGetKeyPair) or unusable (ErrInvalidKeyPair); a self-signed issuer is
// always ready. A bad issuer never stops the engine: its Certificates wait.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { IssuanceEngine } from '../../src/issuance/engine.js';
import {
  V,
  condition,
  isReady,
  secretDir,
  selfSignedCaChain,
  startEngine,
  tempDir,
  waitForStatus,
  type TestEngine,
} from './engine-support.js';

async function waitForIssuer(engine: IssuanceEngine, name: string, pred: (reason: string | undefined) => boolean, what: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const report = engine.issuerStatus().find((i) => i.name === name);
    const ready = report?.status?.conditions.find((c) => c.type === 'Ready');
    if (pred(ready?.reason)) return ready!;
    if (Date.now() > deadline) throw new Error(`timed out waiting for issuer ${name}: ${what}; now ${JSON.stringify(report)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('issuer status', () => {
  const engines: TestEngine[] = [];
  after(async () => {
    for (const e of engines) await e.stop();
  });

  test('a CA issuer becomes Ready (KeyPairVerified) once the CA it names is issued; the self-signed issuer is Ready from the start', async () => {
    const leaf = {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'web', namespace: 'apps' },
      spec: {
        secretName: 'web',
        dnsNames: ['web.example.com'],
        issuerRef: { name: 'ca', kind: 'ClusterIssuer' },
        privateKey: { algorithm: 'ECDSA' },
      },
    };
    const e = await startEngine(selfSignedCaChain({ leafExtra: [leaf] }));
    engines.push(e);
    await waitForStatus(e.engine, 'apps/web', isReady, 'the leaf is issued');
    const ca = await waitForIssuer(e.engine, 'ca', (r) => r === 'KeyPairVerified', 'CA verified');
    assert.equal(ca.status, 'True');
    assert.equal(ca.message, 'Signing CA verified');
    const self = await waitForIssuer(e.engine, 'selfsigned', (r) => r !== undefined, 'checked');
    assert.deepEqual([self.status, self.reason], ['True', 'IsReady']);
  });

  test('a CA issuer with a missing or unusable Secret is Ready=False with the reason; its Certificate waits, the engine runs', async () => {
    const dataDir = tempDir('issuer-status-');
    const resources = [
      { apiVersion: V, kind: 'Issuer', metadata: { name: 'missing', namespace: 'apps' }, spec: { ca: { secretName: 'no-such-ca' } } },
      { apiVersion: V, kind: 'Issuer', metadata: { name: 'garbage', namespace: 'apps' }, spec: { ca: { secretName: 'garbage-ca' } } },
      {
        apiVersion: V,
        kind: 'Certificate',
        metadata: { name: 'waits', namespace: 'apps' },
        spec: { secretName: 'waits', dnsNames: ['w.example.com'], issuerRef: { name: 'garbage' }, privateKey: { algorithm: 'ECDSA' } },
      },
    ];
    const dir = secretDir(dataDir, 'apps', 'garbage-ca');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tls.crt'), 'not a certificate\n');
    writeFileSync(join(dir, 'tls.key'), 'not a key\n', { mode: 0o600 });
    const e = await startEngine(resources, { dataDir });
    engines.push(e);
    const missing = await waitForIssuer(e.engine, 'missing', (r) => r !== undefined, 'checked');
    assert.deepEqual([missing.status, missing.reason], ['False', 'ErrGetKeyPair']);
    assert.match(missing.message, /CA Secret apps\/no-such-ca does not exist/);
    const garbage = await waitForIssuer(e.engine, 'garbage', (r) => r === 'ErrInvalidKeyPair', 'invalid key pair');
    assert.equal(garbage.status, 'False');
    assert.match(garbage.message, /CA Secret apps\/garbage-ca is not a usable CA key pair/);
    assert.doesNotMatch(garbage.message, /not a key/, 'the Secret content is never quoted');
    const s = await waitForStatus(
      e.engine,
      'apps/waits',
      (x) => /Waiting for the issuer/.test(condition(x, 'Issuing')?.message ?? ''),
      'waiting',
    );
    assert.equal(s.failedIssuanceAttempts, undefined, 'an issuer that is not ready is not a failed issuance');
  });
});
