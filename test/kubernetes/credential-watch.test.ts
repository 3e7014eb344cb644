import assert from 'node:assert/strict';
import { test } from 'node:test';
import { streamDeadlineMs, watchCredential } from '../../src/authz/kubernetes/credential-watch.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ReviewedToken } from '../../src/authz/kubernetes/token-reviewer.js';

const user = { username: 'system:serviceaccount:ns:sa', uid: 'u1', groups: [] };
const logger = createLogger({ level: 'silent' });

test('a stream ends between 80% and 95% of its token remaining lifetime', () => {
  assert.equal(
    streamDeadlineMs(1000, () => 0),
    800,
  );
  assert.equal(streamDeadlineMs(1000, () => 0.999999).toFixed(0), '950');
  for (let i = 0; i < 1000; i++) {
    const d = streamDeadlineMs(3_600_000);
    assert.ok(d >= 2_880_000 && d <= 3_420_000, String(d));
  }
  assert.equal(streamDeadlineMs(-5), 0);
});

test('a token near its expiry ends the stream once, before the token expires', async () => {
  const reasons: string[] = [];
  const start = Date.now();
  const stop = watchCredential({
    credential: { token: 't', user, expiresAt: start + 400 },
    review: async () => ({ serviceAccount: { namespace: 'ns', name: 'sa' }, user }),
    reviewIntervalMs: 60_000,
    logger,
    onInvalid: (r) => reasons.push(r),
  });
  const deadline = Date.now() + 5000;
  while (reasons.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  stop();
  assert.equal(reasons.length, 1);
  assert.match(reasons[0]!, /nears its expiry/);
  assert.ok(Date.now() < start + 400, 'ended before the token expired');
});

test('a re-review that refuses the token, or names another user, ends the stream', async () => {
  const answers: Array<ReviewedToken | undefined> = [
    { serviceAccount: { namespace: 'ns', name: 'sa' }, user },
    { serviceAccount: { namespace: 'ns', name: 'sa' }, user: { ...user, uid: 'u2' } },
  ];
  for (const answer of [undefined, answers[1]]) {
    const reasons: string[] = [];
    let reviews = 0;
    const stop = watchCredential({
      credential: { token: 't', user },
      review: async () => (++reviews === 1 ? answers[0] : answer),
      reviewIntervalMs: 20,
      logger,
      onInvalid: (r) => reasons.push(r),
    });
    const deadline = Date.now() + 5000;
    while (reasons.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    stop();
    assert.equal(reasons.length, 1);
    assert.ok(reviews >= 2, 'one review accepted first');
  }
});
