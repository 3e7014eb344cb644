// Keys and tokens are redacted by the logger configuration, not by each call site.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';

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
