// The local issuers end to end on a data directory: a self-signed root CA, a CA issuer
// backed by it, and leaves with each key type, checked with openssl; renewal, key
// rotation policies, restarts and spec changes.

import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeCa } from '../support/openssl-certs.js';
import {
  V,
  assertVerifies,
  certificateDir,
  condition,
  isReady,
  openssl,
  readSecretFiles,
  revisionAtLeast,
  secretDir,
  selfSignedCaChain,
  startEngine,
  tempDir,
  waitForStatus,
  x509Text,
  type TestEngine,
} from './engine-support.js';

const leaf = (name: string, spec: Record<string, unknown>, namespace = 'apps') => ({
  apiVersion: V,
  kind: 'Certificate',
  metadata: { name, namespace },
  spec: { secretName: name, issuerRef: { name: 'ca', kind: 'ClusterIssuer' }, ...spec },
});

const statusOfRevision = (e: TestEngine) => e.engine.status()[0]?.status?.revision;

const spki = (pem: string) => createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');

describe('self-signed root, CA issuer and leaves', () => {
  const engines: TestEngine[] = [];
  after(async () => {
    for (const e of engines) await e.stop();
  });

  test('leaves with RSA 2048, ECDSA P-256 and Ed25519 keys verify against the root and carry exactly the names, usages and constraints asked for', async () => {
    const e = await startEngine(
      selfSignedCaChain({
        leafExtra: [
          leaf('rsa-leaf', {
            commonName: 'rsa.example.com',
            dnsNames: ['rsa.example.com', '*.rsa.example.com'],
            ipAddresses: ['10.0.0.1'],
            usages: ['digital signature', 'key encipherment', 'server auth', 'client auth'],
            privateKey: { algorithm: 'RSA', size: 2048 },
          }),
          leaf('ecdsa-leaf', {
            dnsNames: ['ecdsa.example.com'],
            uris: ['spiffe://example.com/ns/apps/sa/web'],
            usages: ['digital signature', 'client auth'],
            privateKey: { algorithm: 'ECDSA', size: 256, encoding: 'PKCS8' },
          }),
          leaf('ed-leaf', {
            commonName: 'ed.example.com',
            dnsNames: ['ed.example.com'],
            emailAddresses: ['ops@example.com'],
            subject: { organizations: ['Example Org'], countries: ['DE'] },
            usages: ['digital signature', 'server auth'],
            privateKey: { algorithm: 'Ed25519' },
          }),
        ],
      }),
    );
    engines.push(e);
    const names = e.engine
      .fileSecrets()
      .map((s) => `${s.kind}:${s.name}`)
      .sort();
    // The root's key pair is not declared for serving (a CA's key never is): only its -cacert.
    assert.deepEqual(names, [
      'tls_certificate:ecdsa-leaf',
      'tls_certificate:ed-leaf',
      'tls_certificate:rsa-leaf',
      'validation_context:ecdsa-leaf-cacert',
      'validation_context:ed-leaf-cacert',
      'validation_context:root-ca-cacert',
      'validation_context:rsa-leaf-cacert',
    ]);

    const root = await waitForStatus(e.engine, 'cert-manager/root-ca', isReady, 'root Ready');
    assert.equal(root.revision, 1);
    for (const id of ['apps/rsa-leaf', 'apps/ecdsa-leaf', 'apps/ed-leaf']) {
      const s = await waitForStatus(e.engine, id, isReady, 'leaf Ready');
      assert.equal(s.revision, 1);
      assert.equal(s.failedIssuanceAttempts, undefined, `${id} waited for its issuer without counting failures`);
      assert.equal(condition(s, 'Ready')?.reason, 'Ready');
    }

    const rootFiles = readSecretFiles(e.dataDir, 'cert-manager', 'root-ca');
    assert.equal(rootFiles.ca, rootFiles.crt, 'a self-signed certificate is its own ca.crt');
    const rootText = x509Text(rootFiles.crt);
    assert.match(rootText, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
    assert.match(rootText, /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign\n/);
    assert.match(rootText, /Subject: CN ?= ?Test Root CA/);

    const rsa = readSecretFiles(e.dataDir, 'apps', 'rsa-leaf');
    assertVerifies(rootFiles.crt, rsa.crt, 'RSA leaf');
    assert.equal(rsa.ca, rootFiles.crt, 'ca.crt of a leaf is the root');
    assert.equal(rsa.leaf.subjectAltName, 'DNS:rsa.example.com, DNS:*.rsa.example.com, IP Address:10.0.0.1');
    const rsaText = x509Text(rsa.crt);
    assert.match(rsaText, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
    assert.match(rsaText, /X509v3 Extended Key Usage: \s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    assert.match(rsaText, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(rsaText, /Public-Key: \(2048 bit\)/);
    assert.match(rsa.key, /^-----BEGIN RSA PRIVATE KEY-----/, 'PKCS#1 by default');
    assert.equal(rsa.keyMode, 0o600);
    assert.equal(rsa.crt.match(/BEGIN CERTIFICATE/g)?.length, 1, 'the self-signed root is not in tls.crt');

    const ec = readSecretFiles(e.dataDir, 'apps', 'ecdsa-leaf');
    assertVerifies(rootFiles.crt, ec.crt, 'ECDSA leaf');
    assert.equal(ec.leaf.subjectAltName, 'DNS:ecdsa.example.com, URI:spiffe://example.com/ns/apps/sa/web');
    const ecText = x509Text(ec.crt);
    assert.match(ecText, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(ecText, /X509v3 Extended Key Usage: \s+TLS Web Client Authentication\n/);
    assert.match(ecText, /ASN1 OID: prime256v1/);
    assert.match(ec.key, /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8 as asked');
    assert.equal(ec.keyMode, 0o600);

    const ed = readSecretFiles(e.dataDir, 'apps', 'ed-leaf');
    assertVerifies(rootFiles.crt, ed.crt, 'Ed25519 leaf');
    assert.equal(ed.leaf.subjectAltName, 'email:ops@example.com, DNS:ed.example.com');
    assert.match(ed.leaf.subject, /C=DE\nO=Example Org\nCN=ed.example.com/);
    const edText = x509Text(ed.crt);
    assert.match(edText, /Public Key Algorithm: ED25519/);
    assert.match(edText, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(edText, /X509v3 Extended Key Usage: \s+TLS Web Server Authentication\n/);
    assert.match(openssl(['pkey', '-noout', '-text'], ed.key), /ED25519 Private-Key/);

    const s = await waitForStatus(e.engine, 'apps/rsa-leaf', isReady, 'Ready');
    assert.equal(s.notAfter, new Date(rsa.leaf.validTo).toISOString());
    assert.equal(s.notBefore, new Date(rsa.leaf.validFrom).toISOString());
    assert.ok(Date.parse(s.renewalTime!) < Date.parse(s.notAfter) && Date.parse(s.renewalTime!) > Date.parse(s.notBefore));
    assert.ok(!e.logText().includes('PRIVATE KEY'), 'no key material in the logs');
    assert.ok(
      !existsSync(join(certificateDir(e.dataDir, 'apps', 'rsa-leaf'), 'next.key')),
      'the next key is removed once persisted as tls.key',
    );
    const statusFile = JSON.parse(readFileSync(join(certificateDir(e.dataDir, 'apps', 'rsa-leaf'), 'status.json'), 'utf8'));
    assert.equal(statusFile.revision, 1);
    assert.equal(e.engine.readiness().ready, true);
  });

  test('renews when renewBefore is reached: revision 2, a new certificate, and a new key under rotationPolicy Always', async () => {
    const e = await startEngine(
      selfSignedCaChain({
        leafExtra: [
          leaf('short', { dnsNames: ['short.example.com'], duration: '4s', renewBefore: '3s', privateKey: { algorithm: 'ECDSA' } }),
        ],
      }),
    );
    engines.push(e);
    await waitForStatus(e.engine, 'apps/short', revisionAtLeast(1), 'first issuance');
    const first = readSecretFiles(e.dataDir, 'apps', 'short');
    const s2 = await waitForStatus(e.engine, 'apps/short', revisionAtLeast(2), 'renewal');
    await e.engine.idle();
    const second = readSecretFiles(e.dataDir, 'apps', 'short');
    assert.notEqual(second.leaf.serialNumber, first.leaf.serialNumber);
    assert.notEqual(spki(second.key), spki(first.key), 'rotationPolicy Always (the default) gives a new key');
    assert.ok(Date.parse(s2.notAfter!) >= Date.parse(new Date(first.leaf.validTo).toISOString()));
    assert.equal(s2.failedIssuanceAttempts, undefined);
  });

  test('a forced renewal re-issues at once: rotationPolicy Never keeps the key, Always changes it', async () => {
    const e = await startEngine(
      selfSignedCaChain({
        leafExtra: [
          leaf('keep', { dnsNames: ['keep.example.com'], privateKey: { algorithm: 'ECDSA', rotationPolicy: 'Never' } }),
          leaf('rotate', { dnsNames: ['rotate.example.com'], privateKey: { algorithm: 'ECDSA', rotationPolicy: 'Always' } }),
        ],
      }),
    );
    engines.push(e);
    for (const n of ['keep', 'rotate']) await waitForStatus(e.engine, `apps/${n}`, revisionAtLeast(1), 'issued');
    const before = { keep: readSecretFiles(e.dataDir, 'apps', 'keep'), rotate: readSecretFiles(e.dataDir, 'apps', 'rotate') };
    assert.deepEqual(e.engine.find('keep'), ['apps/keep']);
    await e.engine.renew('apps/keep');
    await e.engine.renew('apps/rotate');
    for (const n of ['keep', 'rotate']) {
      const s = await waitForStatus(e.engine, `apps/${n}`, revisionAtLeast(2), 'renewed');
      assert.equal(s.renewalRequestedAt, undefined, 'the trigger is consumed');
    }
    const afterKeep = readSecretFiles(e.dataDir, 'apps', 'keep');
    const afterRotate = readSecretFiles(e.dataDir, 'apps', 'rotate');
    assert.notEqual(afterKeep.leaf.serialNumber, before.keep.leaf.serialNumber);
    assert.equal(spki(afterKeep.key), spki(before.keep.key), 'Never: same key');
    assert.notEqual(afterRotate.leaf.serialNumber, before.rotate.leaf.serialNumber);
    assert.notEqual(spki(afterRotate.key), spki(before.rotate.key), 'Always: new key');
  });

  test('a restart on the same data directory issues nothing; a changed spec re-issues with reason SecretMismatch', async () => {
    const resources = selfSignedCaChain({
      leafExtra: [leaf('web', { dnsNames: ['web.example.com'], privateKey: { algorithm: 'ECDSA' } })],
    });
    const first = await startEngine(resources);
    await waitForStatus(first.engine, 'apps/web', revisionAtLeast(1), 'issued');
    await first.stop();
    const issued = readSecretFiles(first.dataDir, 'apps', 'web');

    const steps: string[] = [];
    const again = await startEngine(resources, {
      dataDir: first.dataDir,
      hook: (step, info) => void steps.push(`${step} ${info.certificate}`),
    });
    engines.push(again);
    const s = await waitForStatus(again.engine, 'apps/web', isReady, 'Ready after restart');
    await again.engine.idle();
    assert.equal(s.revision, 1);
    assert.deepEqual(steps, [], 'nothing issued on restart');
    assert.equal(readSecretFiles(first.dataDir, 'apps', 'web').crt, issued.crt);
    await again.stop();

    const changed = selfSignedCaChain({
      leafExtra: [leaf('web', { dnsNames: ['web.example.com', 'www.example.com'], privateKey: { algorithm: 'ECDSA' } })],
    });
    const third = await startEngine(changed, { dataDir: first.dataDir });
    engines.push(third);
    const s3 = await waitForStatus(third.engine, 'apps/web', revisionAtLeast(2), 're-issued for the new name');
    assert.equal(s3.revision, 2);
    assert.match(third.logText(), /does not match the spec: DNS names missing \[www\.example\.com\]/);
    assert.equal(readSecretFiles(first.dataDir, 'apps', 'web').leaf.subjectAltName, 'DNS:web.example.com, DNS:www.example.com');
  });

  test('with an injected clock past the renewal time, a restart renews with reason Renewing; before it, nothing happens', async () => {
    const DAY = 86_400_000;
    let clock = new Date();
    const resources = [
      { apiVersion: V, kind: 'Issuer', metadata: { name: 'self' }, spec: { selfSigned: {} } },
      {
        apiVersion: V,
        kind: 'Certificate',
        metadata: { name: 'clocked' },
        spec: {
          secretName: 'clocked',
          commonName: 'clocked',
          dnsNames: ['clocked.example.com'],
          issuerRef: { name: 'self' },
          privateKey: { algorithm: 'ECDSA' },
        },
      },
    ];
    const first = await startEngine(resources, { now: () => clock, settings: { renewalJitter: 0 } });
    const s1 = await waitForStatus(first.engine, 'default/clocked', revisionAtLeast(1), 'issued');
    await first.stop();
    assert.equal(Date.parse(s1.renewalTime!), Date.parse(s1.notAfter!) - 30 * DAY, 'one third of 90 days before expiry, no jitter');

    clock = new Date(Date.parse(s1.renewalTime!) - 1000);
    const before = await startEngine(resources, { dataDir: first.dataDir, now: () => clock, settings: { renewalJitter: 0 } });
    await waitForStatus(before.engine, 'default/clocked', isReady, 'evaluated');
    await before.engine.idle();
    assert.equal(statusOfRevision(before), 1, 'a second before the renewal time: nothing to do');
    await before.stop();

    clock = new Date(Date.parse(s1.renewalTime!) + 1000);
    const afterIt = await startEngine(resources, { dataDir: first.dataDir, now: () => clock, settings: { renewalJitter: 0 } });
    engines.push(afterIt);
    const s2 = await waitForStatus(afterIt.engine, 'default/clocked', revisionAtLeast(2), 'renewed');
    assert.match(afterIt.logText(), /Renewing certificate as renewal was scheduled at/);
    assert.equal(s2.notBefore, new Date(Math.floor(clock.getTime() / 1000) * 1000).toISOString(), 'issued at the injected time');
  });

  test('a CA key pair put into the data directory by hand backs a namespaced ca Issuer', async () => {
    const ca = makeCa();
    const dataDir = tempDir();
    const dir = secretDir(dataDir, 'team-a', 'corp-ca');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tls.crt'), ca.certPem);
    writeFileSync(join(dir, 'tls.key'), ca.keyPem, { mode: 0o600 });
    const e = await startEngine(
      [
        { apiVersion: V, kind: 'Issuer', metadata: { name: 'corp', namespace: 'team-a' }, spec: { ca: { secretName: 'corp-ca' } } },
        {
          apiVersion: V,
          kind: 'Certificate',
          metadata: { name: 'svc', namespace: 'team-a' },
          spec: { secretName: 'svc-tls', dnsNames: ['svc.team-a.svc'], issuerRef: { name: 'corp' } },
        },
      ],
      { dataDir },
    );
    engines.push(e);
    await waitForStatus(e.engine, 'team-a/svc', isReady, 'issued');
    const svc = readSecretFiles(dataDir, 'team-a', 'svc-tls');
    assertVerifies(ca.certPem, svc.crt, 'leaf from the hand-placed CA');
    assert.equal(new X509Certificate(svc.ca!).fingerprint256, new X509Certificate(ca.certPem).fingerprint256);
    assert.match(svc.key, /BEGIN RSA PRIVATE KEY/, 'RSA 2048 in PKCS#1 when privateKey is unset (cert-manager defaults)');
    assert.match(x509Text(svc.crt), /Public-Key: \(2048 bit\)/);
  });

  test('a ca Issuer whose Secret never appears leaves the certificate waiting, not failing', async () => {
    const e = await startEngine([
      { apiVersion: V, kind: 'Issuer', metadata: { name: 'missing' }, spec: { ca: { secretName: 'nowhere' } } },
      {
        apiVersion: V,
        kind: 'Certificate',
        metadata: { name: 'orphan' },
        spec: { secretName: 'orphan', dnsNames: ['orphan.example.com'], issuerRef: { name: 'missing' } },
      },
    ]);
    engines.push(e);
    const s = await waitForStatus(
      e.engine,
      'default/orphan',
      (x) => /Waiting for the issuer/.test(condition(x, 'Issuing')?.message ?? ''),
      'waiting',
    );
    assert.equal(condition(s, 'Ready')?.status, 'False');
    assert.equal(condition(s, 'Ready')?.reason, 'DoesNotExist');
    assert.match(condition(s, 'Ready')!.message, /CA Secret default\/nowhere does not exist/);
    assert.equal(s.failedIssuanceAttempts, undefined);
    const r = e.engine.readiness();
    assert.equal(r.ready, false);
    assert.match(r.reasons.join('\n'), /default\/orphan: Ready=False \(DoesNotExist\)/);
  });
});
