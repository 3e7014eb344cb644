// The pure parts of a CA rotation: the ACK gate over delivery rows, the bundle arithmetic,
// and the persisted state read back (never trusted through a cast).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ackGate } from '../../src/delivery/ack-gate.js';
import type { NodeDelivery, SecretDelivery } from '../../src/delivery/delivery-report.js';
import { parseRotationState } from '../../src/issuance/ca-rotation/rotation-state.js';
import { bundleOf, certificateIds, sameCertificates } from '../../src/pki/ca-bundle.js';
import { makeCa } from '../support/openssl-certs.js';

function row(node: string, replica: string, secrets: Array<Partial<SecretDelivery> & { name: string }>): NodeDelivery {
  return {
    replica,
    node: { id: node, cluster: 'gw' },
    identity: 'sa:gw',
    streams: secrets.length,
    secrets: secrets.map((s) => ({ state: 'SYNCED', current: 'v2', sent: 'v2', acked: 'v2', ...s })),
  };
}

describe('the ACK gate', () => {
  const target = [{ name: 'web-cacert', version: 'v2' }];
  const cases: Array<[string, NodeDelivery[], { subscribers: number; waiting: string[]; nack?: string }]> = [
    ['no subscriber: nothing to wait for', [], { subscribers: 0, waiting: [] }],
    [
      'every subscriber on every replica ACKed the version: open',
      [row('a', 'r1', [{ name: 'web-cacert' }]), row('b', 'r2', [{ name: 'web-cacert' }])],
      { subscribers: 2, waiting: [] },
    ],
    [
      'a subscriber on another replica still on the old version: waits for it',
      [row('a', 'r1', [{ name: 'web-cacert' }]), row('b', 'r2', [{ name: 'web-cacert', state: 'STALE', acked: 'v1' }])],
      { subscribers: 2, waiting: ['b@r2'] },
    ],
    [
      'sent, not ACKed yet: waits',
      [row('a', 'r1', [{ name: 'web-cacert', state: 'PENDING', acked: null }])],
      { subscribers: 1, waiting: ['a@r1'] },
    ],
    [
      'a NACK of the version: stops, naming where',
      [row('a', 'r1', [{ name: 'web-cacert', state: 'NACKED', acked: 'v1', nack: { version: 'v2', message: 'bad', at: 't' } }])],
      { subscribers: 1, waiting: [], nack: 'a@r1' },
    ],
    [
      'a NACK of an older version does not count against this one',
      [row('a', 'r1', [{ name: 'web-cacert', nack: { version: 'v0', message: 'old', at: 't' } }])],
      { subscribers: 1, waiting: [] },
    ],
    [
      'a denied name is no subscriber',
      [row('a', 'r1', [{ name: 'web-cacert', state: 'NOT_SENT', reason: 'denied', acked: null }])],
      { subscribers: 0, waiting: [] },
    ],
    ['other names do not count', [row('a', 'r1', [{ name: 'other', state: 'STALE', acked: 'v1' }])], { subscribers: 0, waiting: [] }],
  ];
  for (const [name, rows, want] of cases) {
    test(name, () => {
      const g = ackGate(rows, target);
      assert.equal(g.subscribers, want.subscribers);
      assert.deepEqual(
        g.waiting.map((w) => `${w.node}@${w.replica}`),
        want.waiting,
      );
      assert.equal(g.nack ? `${g.nack.node}@${g.nack.replica}` : undefined, want.nack);
    });
  }
});

describe('bundles', () => {
  const [a, b] = [makeCa('Parts A'), makeCa('Parts B')];
  test('bundleOf keeps each certificate once, first occurrence first; sameCertificates ignores order and text', () => {
    const ab = bundleOf(a.certPem, b.certPem, a.certPem);
    assert.deepEqual(certificateIds(ab), [...certificateIds(a.certPem), ...certificateIds(b.certPem)]);
    assert.ok(sameCertificates(ab, `junk\n${b.certPem}\n\n${a.certPem}`));
    assert.ok(!sameCertificates(ab, a.certPem));
    assert.ok(!sameCertificates(undefined, a.certPem));
  });
});

describe('the persisted rotation state', () => {
  const good = {
    issuer: 'ClusterIssuer/ca',
    phase: 'Reissue',
    trigger: 'command',
    startedAt: 't',
    phaseSince: 't',
    oldTrustPem: 'o',
    newChainPem: 'n',
    newTrustPem: 'n',
    deadline: 't',
    requested: {},
    history: [],
  };
  test('reads back what was written', () => {
    assert.equal(parseRotationState(JSON.stringify(good))?.phase, 'Reissue');
  });
  for (const [what, text] of [
    ['not JSON', '{'],
    ['an unknown phase', JSON.stringify({ ...good, phase: 'Sideways' })],
    ['a missing field', JSON.stringify({ ...good, oldTrustPem: undefined })],
    ['an unknown trigger', JSON.stringify({ ...good, trigger: 'cron' })],
  ] as const) {
    test(`refuses ${what}`, () => assert.equal(parseRotationState(text), undefined));
  }
});
