// Keys and tokens are redacted by the logger configuration, not by each call site.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { redactLogObject } from '../../src/observability/log-redaction.js';
import { createLogger } from '../../src/observability/logger.js';
import { duplicateKeys } from '../support/json-duplicate-keys.js';

test('private keys, tokens and authorization headers never reach a log line; secret names do', () => {
  let out = '';
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out += c.toString();
      cb();
    },
  });
  const log = createLogger({ destination: sink, level: 'info' });
  log.info(
    {
      secret: 'kubernetes://apps/web',
      privateKey: '-----BEGIN PRIVATE KEY-----MIIEvQ',
      token: 'eyJhbGciOiJSUzI1NiJ9.payload.sig',
      metadata: { authorization: 'Bearer eyJhbGciOi' },
      material: { key: 'MIIEvQ-key', privateKey: 'MIIEvQ-pk' },
      tsig: { secret: 'c2VjcmV0' },
    },
    'x',
  );
  assert.ok(!out.includes('MIIEvQ'), out);
  assert.ok(!out.includes('eyJhbGci'), out);
  assert.ok(!out.includes('c2VjcmV0'), out);
  assert.ok(out.includes('kubernetes://apps/web'));
});

test('--log-format pretty: time, level, message and key=value for people, still redacted', async () => {
  let out = '';
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out += c.toString();
      cb();
    },
  });
  const log = createLogger({ destination: sink, level: 'info', format: 'pretty' });
  log.warn({ secret: 'web', code: 'KEY_MISMATCH', privateKey: '-----BEGIN PRIVATE KEY-----MIIEvQ' }, 'update rejected');
  await new Promise((r) => setImmediate(r));
  assert.match(out, /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN {2}update rejected {2}secret=web code=KEY_MISMATCH privateKey=\[redacted\]\n$/);
  assert.doesNotMatch(out, /MIIEvQ/);
});

test('the duplicate-key check used on every test server log line finds repeats at any depth', () => {
  assert.deepEqual(duplicateKeys('{"a":1,"issuer":"x","b":{"c":1},"issuer":"y"}'), ['issuer']);
  assert.deepEqual(duplicateKeys('{"a":{"k":1,"k":2},"b":[{"k":1},{"k":2}],"s":"\\"k\\":"}'), ['k']);
  assert.deepEqual(duplicateKeys('{"level":"info","msg":"a, \\"b\\": c"}'), []);
});

test('child bindings are redacted too, and the objects logged are never changed', () => {
  let out = '';
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out += c.toString();
      cb();
    },
  });
  const log = createLogger({ destination: sink, level: 'info' }).child({
    token: 'eyJhbGciOi-child',
    headers: { authorization: 'Bearer eyJhbGciOi-h' },
  });
  const logged = {
    secret: 'web',
    material: { privateKey: 'MIIEvQ-pk', subject: 'CN=web' },
    err: Object.assign(new Error('boom'), { key: 'MIIEvQ-err' }),
  };
  log.info(logged, 'x');
  assert.ok(!out.includes('eyJhbGci'), out);
  assert.ok(!out.includes('MIIEvQ'), out);
  const line = JSON.parse(out) as { material: { subject: string }; err: { message: string } };
  assert.equal(line.material.subject, 'CN=web', 'what is not a key stays');
  assert.equal(line.err.message, 'boom', 'an error keeps its message');
  assert.equal(logged.material.privateKey, 'MIIEvQ-pk', "the caller's object is not changed");
  assert.equal(logged.err.key, 'MIIEvQ-err');
});

test('a log object with nothing to redact is written as is, without a copy', () => {
  const obj = { secret: 'web', version: 'abc', origin: { source: 'file', ref: '/etc/certs/web' }, names: ['a', 'b'] };
  assert.equal(redactLogObject(obj), obj);
  assert.equal(redactLogObject({ ...obj, password: 'p' })['password'], '[redacted]');
});
