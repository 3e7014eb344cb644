// The file source: PEM files declared in the config, watched; rotations by rewrite,
// atomic rename and Kubernetes-style `..data` symlink swap reach streams; a half-written
// pair is never pushed; a deleted or unreadable file keeps the last good version.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';
import { makeFixtures, startTestServer, until, type Fixtures, type TestServer } from '../support/test-server.js';

let dir: string;
let fx: Fixtures;
let server: TestServer;
let envoy: FakeEnvoy;

const p = (...parts: string[]) => join(dir, ...parts);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sds-files-'));
  fx = makeFixtures();
  // Plain files.
  mkdirSync(p('plain'));
  writeFileSync(p('plain', 'tls.crt'), fx.web1.certPem);
  writeFileSync(p('plain', 'tls.key'), fx.web1.keyPem);
  writeFileSync(p('plain', 'ca.crt'), fx.ca.certPem);
  // A Kubernetes Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..v1
  mkdirSync(p('vol', '..v1'), { recursive: true });
  writeFileSync(p('vol', '..v1', 'tls.crt'), fx.web1.certPem);
  writeFileSync(p('vol', '..v1', 'tls.key'), fx.web1.keyPem);
  symlinkSync('..v1', p('vol', '..data'));
  symlinkSync('..data/tls.crt', p('vol', 'tls.crt'));
  symlinkSync('..data/tls.key', p('vol', 'tls.key'));
  server = await startTestServer({
    secrets: [
      { name: 'plain', tlsCertificate: { certificateChainFile: p('plain', 'tls.crt'), privateKeyFile: p('plain', 'tls.key') } },
      { name: 'plain-ca', validationContext: { trustedCaFile: p('plain', 'ca.crt') } },
      { name: 'vol', tlsCertificate: { certificateChainFile: p('vol', 'tls.crt'), privateKeyFile: p('vol', 'tls.key') } },
    ],
  });
  envoy = new FakeEnvoy(server.grpcAddress!);
});
after(async () => {
  envoy.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function subscribed(name: string) {
  const s = envoy.sotw();
  s.request({ names: [name] });
  const r = await s.response();
  s.ack(r);
  return { s, r };
}

describe('file source', () => {
  test('declared files are served at start, certificates and CA bundles', async () => {
    const { s, r } = await subscribed('plain');
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.certificate_chain), fx.web1.certPem);
    s.cancel();
    const ca = await envoy.fetch(['plain-ca']);
    assert.equal(pemOf(ca.secrets[0]!.validation_context!.trusted_ca), fx.ca.certPem);
  });

  test('an atomic rename of both files is picked up and pushed', async () => {
    const { s } = await subscribed('plain');
    writeFileSync(p('plain', '.tls.crt.tmp'), fx.web2.certPem);
    writeFileSync(p('plain', '.tls.key.tmp'), fx.web2.keyPem);
    renameSync(p('plain', '.tls.key.tmp'), p('plain', 'tls.key'));
    renameSync(p('plain', '.tls.crt.tmp'), p('plain', 'tls.crt'));
    const r = await s.response();
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.certificate_chain), fx.web2.certPem);
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.private_key), fx.web2.keyPem);
    s.cancel();
  });

  test('a Kubernetes-style ..data symlink swap is picked up', async () => {
    const { s } = await subscribed('vol');
    mkdirSync(p('vol', '..v2'));
    writeFileSync(p('vol', '..v2', 'tls.crt'), fx.other.certPem);
    writeFileSync(p('vol', '..v2', 'tls.key'), fx.other.keyPem);
    symlinkSync('..v2', p('vol', '..data_tmp'));
    renameSync(p('vol', '..data_tmp'), p('vol', '..data'));
    const r = await s.response();
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.certificate_chain), fx.other.certPem);
    s.cancel();
  });

  test('a half-written pair (certificate replaced before its key) is never pushed', async () => {
    const { s, r: first } = await subscribed('plain');
    const current = pemOf(first.secrets[0]!.tls_certificate!.certificate_chain);
    const next = current === fx.web1.certPem ? fx.other : fx.web1;
    writeFileSync(p('plain', 'tls.crt'), next.certPem);
    await new Promise((r) => setTimeout(r, 10));
    writeFileSync(p('plain', 'tls.key'), next.keyPem);
    const r = await s.response();
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.certificate_chain), next.certPem);
    assert.equal(pemOf(r.secrets[0]!.tls_certificate!.private_key), next.keyPem);
    await s.nothing(300);
    s.cancel();
  });

  test('a pair that stays mismatched is rejected with a log line; the last good version stays', async () => {
    const { s, r: first } = await subscribed('plain');
    const version = first.version_info;
    writeFileSync(
      p('plain', 'tls.key'),
      fx.web2.keyPem === pemOf(first.secrets[0]!.tls_certificate!.private_key) ? fx.web1.keyPem : fx.web2.keyPem,
    );
    await until(() => server.logs.some((l) => l['secret'] === 'plain' && l['code'] === 'KEY_MISMATCH'), 5000, 'rejection logged');
    assert.equal(server.store.get('plain')!.version, version);
    await s.nothing();
    // Repair it.
    writeFileSync(p('plain', 'tls.crt'), fx.web1.certPem);
    writeFileSync(p('plain', 'tls.key'), fx.web1.keyPem);
    await until(
      () =>
        server.store.get('plain')!.material.kind === 'tls_certificate' &&
        (server.store.get('plain')!.material as { certificateChain: string }).certificateChain === fx.web1.certPem,
      5000,
      'repair',
    );
    s.cancel();
  });

  test('a deleted file keeps the last good version served and logs why', async () => {
    const version = server.store.get('plain-ca')!.version;
    unlinkSync(p('plain', 'ca.crt'));
    await until(() => server.logs.some((l) => l['secret'] === 'plain-ca' && l['code'] === 'ENOENT'), 5000, 'missing file logged');
    assert.equal(server.store.get('plain-ca')!.version, version);
    const ca = await envoy.fetch(['plain-ca']);
    assert.equal(pemOf(ca.secrets[0]!.validation_context!.trusted_ca), fx.ca.certPem);
    writeFileSync(p('plain', 'ca.crt'), fx.ca.certPem);
  });

  // Was EISDIR (readFile's error); now every non-regular file gets one stable code.
  test('an unreadable file (here a directory in its place) keeps the last good version', async () => {
    const version = server.store.get('plain-ca')!.version;
    unlinkSync(p('plain', 'ca.crt'));
    mkdirSync(p('plain', 'ca.crt'));
    await until(
      () => server.logs.some((l) => l['secret'] === 'plain-ca' && l['code'] === 'NOT_REGULAR_FILE'),
      5000,
      'NOT_REGULAR_FILE logged',
    );
    assert.equal(server.store.get('plain-ca')!.version, version);
    rmSync(p('plain', 'ca.crt'), { recursive: true });
    writeFileSync(p('plain', 'ca.crt'), fx.ca.certPem);
  });
});
