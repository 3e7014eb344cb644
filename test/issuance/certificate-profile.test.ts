// The certificate profile at config time and at issuance: what issuance would refuse is
// refused when the config is read, with the field's path and the rule; validity comes
// from the moment of signing and is clamped to the whole issuing chain.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { parseIssuanceConfig } from '../../src/issuance/issuance-config.js';
import { createCertificate, encodePrivateKeyPem, generatePrivateKey } from '../../src/pki/index.js';
import { V, readSecretFiles, revisionAtLeast, secretDir, startEngine, tempDir, waitForStatus, type TestEngine } from './engine-support.js';

const issuers = [
  { apiVersion: V, kind: 'ClusterIssuer', metadata: { name: 'self' }, spec: { selfSigned: {} } },
  { apiVersion: V, kind: 'ClusterIssuer', metadata: { name: 'ca' }, spec: { ca: { secretName: 'ca' } } },
];
const cert = (spec: Record<string, unknown>, issuer = 'ca') => ({
  apiVersion: V,
  kind: 'Certificate',
  metadata: { name: 'c' },
  spec: { secretName: 'c', issuerRef: { name: issuer, kind: 'ClusterIssuer' }, ...spec },
});
const parse = (spec: Record<string, unknown>, issuer = 'ca') =>
  parseIssuanceConfig({ resources: [...issuers, cert(spec, issuer)] }, { baseDir: '.' }).certificates[0]!;

function refused(spec: Record<string, unknown>, field: string, message: RegExp, issuer = 'ca'): void {
  assert.throws(
    () => parse(spec, issuer),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.field, field, err.message);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('certificate profile at config time', () => {
  const dns = { dnsNames: ['a.example.com'] };
  test('usages are checked against the key type, as issuance checks them', () => {
    refused(
      { ...dns, privateKey: { algorithm: 'ECDSA' }, usages: ['digital signature', 'key encipherment'] },
      'issuance.resources[2].spec.usages',
      /"key encipherment" is not allowed with an ECDSA key in a leaf certificate \(RFC 5480 3 and RFC 8813 3/,
    );
    refused(
      { ...dns, privateKey: { algorithm: 'Ed25519' }, usages: ['data encipherment'] },
      'issuance.resources[2].spec.usages',
      /"data encipherment" is not allowed with an Ed25519 key/,
    );
    refused(
      { commonName: 'CA', isCA: true, usages: ['digital signature', 'key encipherment', 'cert sign'] },
      'issuance.resources[2].spec.usages',
      /not allowed in an RSA CA certificate \(RFC 3279/,
    );
    refused({ ...dns, usages: ['cert sign'] }, 'issuance.resources[2].spec.usages', /needs isCA: true/);
    assert.deepEqual(
      parse({ ...dns, usages: ['digital signature', 'key encipherment', 'server auth'] }).spec.usages,
      ['digital signature', 'key encipherment', 'server auth'],
      'an RSA leaf may encipher keys',
    );
  });

  test('Unicode or spaced URIs and email addresses are refused', () => {
    refused({ ...dns, uris: ['spiffe://exämple.org/x'] }, 'issuance.resources[2].spec.uris[0]', /must be ASCII without spaces/);
    refused({ ...dns, uris: ['spiffe://example.org/a b'] }, 'issuance.resources[2].spec.uris[0]', /must be ASCII without spaces/);
    refused(
      { ...dns, emailAddresses: ['jürgen@example.org'] },
      'issuance.resources[2].spec.emailAddresses[0]',
      /must be local@domain in ASCII/,
    );
    refused(
      { ...dns, emailAddresses: ['a b@example.org'] },
      'issuance.resources[2].spec.emailAddresses[0]',
      /must be local@domain in ASCII/,
    );
  });

  test('selfSigned or CA certificates without a subject are refused', () => {
    refused(dns, 'Certificate default/c.spec.subject', /a self-signed certificate needs a subject/, 'self');
    refused({ ...dns, isCA: true }, 'issuance.resources[2].spec.subject', /a CA certificate needs a subject/);
    assert.equal(parse({ ...dns, subject: { organizations: ['Example'] } }, 'self').spec.subject?.organizations?.[0], 'Example');
  });

  test('subject attributes have upper bounds counted in characters; countries are upper-cased ISO 3166 codes', () => {
    assert.equal(parse({ ...dns, commonName: '🔐'.repeat(64) }).spec.commonName, '🔐'.repeat(64), '64 characters, 128 UTF-16 units');
    refused({ ...dns, commonName: '🔐'.repeat(65) }, 'issuance.resources[2].spec.commonName', /65 characters; at most 64/);
    refused({ ...dns, subject: { organizations: ['o'.repeat(65)] } }, 'issuance.resources[2].spec.subject.organizations[0]', /at most 64/);
    refused({ ...dns, subject: { postalCodes: ['1'.repeat(17)] } }, 'issuance.resources[2].spec.subject.postalCodes[0]', /at most 16/);
    refused({ ...dns, subject: { serialNumber: '9'.repeat(65) } }, 'issuance.resources[2].spec.subject.serialNumber', /at most 64/);
    assert.deepEqual(parse({ ...dns, subject: { countries: ['de', 'Fr'] } }).spec.subject?.countries, ['DE', 'FR']);
    refused(
      { ...dns, subject: { countries: ['XX'] } },
      'issuance.resources[2].spec.subject.countries[0]',
      /not an ISO 3166-1 alpha-2 code/,
    );
  });
});

describe('validity at issuance', () => {
  const engines: TestEngine[] = [];
  after(async () => {
    for (const e of engines) await e.stop();
  });

  test('notBefore is taken after the key is generated, not when the attempt started', async () => {
    let clock = new Date('2031-03-01T00:00:00Z');
    const e = await startEngine([issuers[0], cert({ commonName: 'slow-key', privateKey: { algorithm: 'RSA', size: 2048 } }, 'self')], {
      now: () => clock,
      // The key generation "takes" an hour.
      hook: (step) => {
        if (step === 'key-persisted') clock = new Date(clock.getTime() + 3_600_000);
      },
    });
    engines.push(e);
    await waitForStatus(e.engine, 'default/c', revisionAtLeast(1), 'issued');
    const leaf = readSecretFiles(e.dataDir, 'default', 'c').leaf;
    assert.equal(new Date(leaf.validFrom).toISOString(), '2031-03-01T01:00:00.000Z');
  });

  test('a CA issuer clamps notBefore to the issuing CA and notAfter to the earliest CA of its chain', async () => {
    const dataDir = tempDir('profile-chain-');
    const now = new Date('2031-06-01T00:00:00Z');
    const rootKey = await generatePrivateKey({ algorithm: 'ECDSA' });
    const root = await createCertificate({
      subject: { commonName: 'Short Root' },
      issuer: 'self',
      privateKey: rootKey,
      isCA: true,
      notBefore: new Date('2031-01-01T00:00:00Z'),
      notAfter: new Date('2031-07-01T00:00:00Z'),
    });
    const interKey = await generatePrivateKey({ algorithm: 'ECDSA' });
    // The intermediate starts a day after "now" and outlives its root by years.
    const inter = await createCertificate({
      subject: { commonName: 'Long Intermediate' },
      issuer: { certificate: root.certificate, privateKey: rootKey },
      publicKey: interKey,
      isCA: true,
      notBefore: new Date('2031-06-02T00:00:00Z'),
      notAfter: new Date('2035-01-01T00:00:00Z'),
    });
    const dir = secretDir(dataDir, 'cert-manager', 'ca');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tls.crt'), inter.pem);
    writeFileSync(join(dir, 'tls.key'), encodePrivateKeyPem(interKey, 'PKCS8'), { mode: 0o600 });
    writeFileSync(join(dir, 'ca.crt'), root.pem);
    const e = await startEngine(
      [issuers[1], cert({ dnsNames: ['chain.example.com'], privateKey: { algorithm: 'ECDSA' }, duration: '8760h' })],
      { dataDir, now: () => now },
    );
    engines.push(e);
    await waitForStatus(e.engine, 'default/c', (s) => (s.revision ?? 0) >= 1, 'issued');
    const files = readSecretFiles(dataDir, 'default', 'c');
    assert.equal(new Date(files.leaf.validFrom).toISOString(), '2031-06-02T00:00:00.000Z', "not before the intermediate's notBefore");
    assert.equal(new Date(files.leaf.validTo).toISOString(), '2031-07-01T00:00:00.000Z', "not after the root's notAfter");
    assert.ok(new X509Certificate(files.crt).checkIssued(new X509Certificate(inter.pem)));
  });
});
