// The session layer's per-client bounds, without a server: the rate-limited log writes
// its budget then one summary per interval; the identity budget counts distinct names
// across streams, lets a stream at the edge swap a name, and forgets closed streams.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { DeltaSession } from '../../src/sds/delta-session.js';
import { IdentityNames } from '../../src/sds/identity-names.js';
import { RateLimitedLog } from '../../src/sds/rate-limited-log.js';
import { DEFAULT_REQUEST_LIMITS } from '../../src/sds/request-checks.js';
import { SotwSession } from '../../src/sds/sotw-session.js';
import { StreamStatus } from '../../src/sds/stream-status.js';
import { SECRET_TYPE_URL } from '../../src/sds/type-urls.js';

const identity = { kind: 'unix' as const, principals: ['unix'], peer: 'test' };

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination: sink }) };
}

describe('RateLimitedLog', () => {
  test('writes linesPerInterval lines per kind, then one summary with what was left out', async () => {
    const { lines, logger } = capture();
    let now = 0;
    const log = new RateLimitedLog(logger, { linesPerInterval: 3, intervalMs: 1000 }, () => now);
    for (let i = 0; i < 10; i++) log.warn('denied', logger, { i }, 'secret name denied to caller', 100);
    log.warn('nack', logger, {}, 'client rejected secret (NACK)');
    await new Promise((r) => setImmediate(r));
    assert.equal(lines.filter((l) => l['msg'] === 'secret name denied to caller').length, 3);
    assert.equal(lines.filter((l) => l['msg'] === 'client rejected secret (NACK)').length, 1, 'each kind has its own budget');
    now = 1000;
    log.warn('denied', logger, { i: 10 }, 'secret name denied to caller');
    await new Promise((r) => setImmediate(r));
    const summary = lines.find((l) => l['kind'] === 'denied');
    assert.equal(summary?.['suppressedLines'], 7);
    assert.equal(summary?.['suppressedCount'], 700);
    assert.equal(lines.at(-1)?.['i'], 10, 'a new interval writes again');
  });
});

describe('IdentityNames', () => {
  const req = (names: string[], nonce = '') => ({
    type_url: SECRET_TYPE_URL,
    resource_names: names,
    response_nonce: nonce,
    node: { id: 'n', cluster: 'c' },
  });

  test('counts distinct names across the streams of one identity, and releases them when streams close', () => {
    const names = new IdentityNames(3);
    const a = new SotwSession(new StreamStatus(1, 'sotw', identity), 'StreamSecrets', DEFAULT_REQUEST_LIMITS, names.budgetFor(identity));
    const b = new SotwSession(new StreamStatus(2, 'sotw', identity), 'StreamSecrets', DEFAULT_REQUEST_LIMITS, names.budgetFor(identity));
    assert.equal(a.onRequest(req(['x', 'y'])).type, 'accept');
    assert.equal(b.onRequest(req(['x', 'y', 'z'])).type, 'accept', 'shared names count once');
    assert.equal(names.count(identity), 3);
    const c = new SotwSession(new StreamStatus(3, 'sotw', identity), 'StreamSecrets', DEFAULT_REQUEST_LIMITS, names.budgetFor(identity));
    const refused = c.onRequest(req(['w']));
    assert.equal(refused.type, 'reject');
    assert.equal(refused.type === 'reject' && refused.reason, 'too_many_names_for_identity');
    b.close();
    assert.equal(names.count(identity), 2);
    a.close();
    assert.equal(names.count(identity), 0);
  });

  test('a stream at the identity budget may swap a name it alone holds', () => {
    const names = new IdentityNames(2);
    const d = new DeltaSession(new StreamStatus(1, 'delta', identity), 'DeltaSecrets', DEFAULT_REQUEST_LIMITS, names.budgetFor(identity));
    assert.equal(
      d.onRequest({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['x', 'y'], node: { id: 'n', cluster: 'c' } }).type,
      'accept',
    );
    assert.equal(
      d.onRequest({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['z'], resource_names_unsubscribe: ['x'] }).type,
      'accept',
    );
    assert.deepEqual(d.subscriptions().sort(), ['y', 'z']);
    assert.equal(
      d.onRequest({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['y'] }).type,
      'accept',
      'subscribing again to a held name',
    );
    assert.equal(d.onRequest({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['w'] }).type, 'reject');
  });

  test("names are interned per identity: a second stream holds the first stream's string", () => {
    const names = new IdentityNames(10);
    const a = new SotwSession(new StreamStatus(1, 'sotw', identity), 'StreamSecrets', DEFAULT_REQUEST_LIMITS, names.budgetFor(identity));
    const b = new SotwSession(new StreamStatus(2, 'sotw', identity), 'StreamSecrets', DEFAULT_REQUEST_LIMITS, names.budgetFor(identity));
    const first = a.onRequest(req(['long-name'.padEnd(100, 'x')]));
    const second = b.onRequest(req([['long-name'.padEnd(50, 'x'), 'x'.repeat(50)].join('')]));
    assert.ok(first.type === 'accept' && second.type === 'accept');
    assert.equal(second.added[0], first.added[0]);
  });
});

test('a NACK message is cut to maxErrorDetailLength before it is kept', () => {
  const st = new StreamStatus(1, 'sotw', identity);
  const s = new SotwSession(st, 'StreamSecrets', DEFAULT_REQUEST_LIMITS);
  s.onRequest({ type_url: SECRET_TYPE_URL, resource_names: ['a'], node: { id: 'n', cluster: 'c' } });
  s.buildResponse([
    {
      name: 'a',
      kind: 'tls_certificate',
      version: 'v1',
      material: { kind: 'tls_certificate', certificateChain: 'chain', privateKey: 'k' },
      origin: { source: 'test', ref: 'a' },
      facts: { subject: '', notBefore: new Date(0), notAfter: new Date(0), dnsNames: [], sha256Fingerprint: '' },
      warnings: [],
      updatedAt: new Date(0),
    },
  ]);
  const v = s.onRequest({
    type_url: SECRET_TYPE_URL,
    resource_names: ['a'],
    response_nonce: '1',
    error_detail: { code: 13, message: 'E'.repeat(1_000_000) },
  });
  assert.equal(v.type, 'accept');
  const kept = v.type === 'accept' ? (v.nack?.message ?? '') : '';
  assert.ok(kept.length < DEFAULT_REQUEST_LIMITS.maxErrorDetailLength + 64, `${kept.length} characters kept`);
  assert.match(kept, /^E{1024}… \[998976 more characters\]$/);
});
