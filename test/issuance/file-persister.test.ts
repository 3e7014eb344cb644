// The data-directory persister: Secrets as one file per data key (keys 0600), the
// engine's own state per certificate, and what a half-written or hand-made directory
// reads as. Plus the issuance slots that bound concurrent issuances.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FilePersister } from '../../src/issuance/persisters/file-persister.js';
import { IssuanceSlots } from '../../src/issuance/issuance-slots.js';
import type { CertificateResource } from '../../src/issuance/resources.js';
import { tempDir } from './engine-support.js';

const cert = { name: 'web', namespace: 'apps', id: 'apps/web' } as CertificateResource;

describe('file persister', () => {
  test('a Secret is written key first with private data at 0600, and stale data keys are removed', async () => {
    const p = new FilePersister(tempDir());
    await p.writeSecret('apps', 'web-tls', { data: { 'tls.crt': 'CERT', 'tls.key': 'KEY', 'ca.crt': 'CA' }, annotations: { a: 'b' } });
    const dir = p.secretDir('apps', 'web-tls');
    assert.equal(statSync(join(dir, 'tls.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'tls.crt')).mode & 0o777, 0o644);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(await p.readSecret('apps', 'web-tls'), {
      data: { 'ca.crt': 'CA', 'tls.crt': 'CERT', 'tls.key': 'KEY' },
      annotations: { a: 'b' },
    });
    await p.writeSecret('apps', 'web-tls', { data: { 'tls.crt': 'CERT2', 'tls.key': 'KEY2' }, annotations: {} });
    assert.deepEqual((await p.readSecret('apps', 'web-tls'))?.data, { 'tls.crt': 'CERT2', 'tls.key': 'KEY2' });
    assert.deepEqual(readdirSync(dir).sort(), ['.annotations.json', 'tls.crt', 'tls.key'], 'no temp files left, ca.crt removed');
  });

  test('an empty directory (prepared for the file source) reads as no Secret; hand-made files read without annotations', async () => {
    const p = new FilePersister(tempDir());
    const files = p.secretFiles('ns', 'empty');
    assert.ok(existsSync(join(files.certificateChainFile, '..')));
    assert.equal(await p.readSecret('ns', 'empty'), undefined);
    assert.equal(await p.readSecret('ns', 'absent'), undefined);
    writeFileSync(join(p.secretDir('ns', 'empty'), 'tsig-secret-key'), 'c2VjcmV0');
    assert.deepEqual(await p.readSecret('ns', 'empty'), { data: { 'tsig-secret-key': 'c2VjcmV0' }, annotations: {} });
  });

  test('next key (0600), order and status are kept per certificate and can be removed', async () => {
    const p = new FilePersister(tempDir());
    assert.equal(await p.readNextPrivateKey(cert), undefined);
    await p.writeNextPrivateKey(cert, 'KEY');
    assert.equal(statSync(join(p.certificateDir(cert), 'next.key')).mode & 0o777, 0o600);
    assert.equal(await p.readNextPrivateKey(cert), 'KEY');
    const order = { server: 's', accountUrl: 'a', orderUrl: 'o', identifiers: ['x'], publicKeySha256: 'h', createdAt: 't' };
    await p.writeOrder(cert, order);
    assert.deepEqual(await p.readOrder(cert), order);
    await p.writeStatus(cert, { conditions: [], revision: 3 });
    assert.equal((await p.readStatus(cert))?.revision, 3);
    await p.deleteNextPrivateKey(cert);
    await p.deleteOrder(cert);
    assert.equal(await p.readNextPrivateKey(cert), undefined);
    assert.equal(await p.readOrder(cert), undefined);
    writeFileSync(join(p.certificateDir(cert), 'status.json'), '{ damaged');
    assert.equal(await p.readStatus(cert), undefined, 'a damaged status is rebuilt, not fatal');
  });
});

test('issuance slots: at most `limit` at once, the rest in order, and an abort leaves the queue', async () => {
  const slots = new IssuanceSlots(2);
  const ac = new AbortController();
  const a = await slots.acquire(ac.signal);
  const b = await slots.acquire(ac.signal);
  const order: string[] = [];
  const c = slots.acquire(ac.signal).then((r) => (order.push('c'), r));
  const other = new AbortController();
  const d = slots.acquire(other.signal);
  const e = slots.acquire(ac.signal).then((r) => (order.push('e'), r));
  other.abort(new Error('stop'));
  await assert.rejects(d, /stop/);
  a();
  a(); // twice is harmless
  (await c)();
  b();
  (await e)();
  assert.deepEqual(order, ['c', 'e']);
});
