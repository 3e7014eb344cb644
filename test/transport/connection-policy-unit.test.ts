// ConnectionPolicy against a stand-in HTTP/2 session and a clock we move by hand, for
// what takes minutes on a real connection (Envoy's 30 s keepalive pings).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { constants, type Http2Session } from 'node:http2';
import { describe, test } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { ConnectionPolicy, DEFAULT_CONNECTION_POLICY } from '../../src/transport/connection-policy.js';
import { metricTotal, until } from '../support/test-server.js';

class FakeSession extends EventEmitter {
  destroyed = false;
  closed = false;
  goawayCode: number | undefined;
  answerPings = true;
  pingsSent = 0;
  socket = { remoteAddress: '127.0.0.1' };
  goaway(code: number): void {
    this.goawayCode = code;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
  ping(cb: () => void): boolean {
    this.pingsSent++;
    if (this.answerPings) setImmediate(cb);
    return true;
  }
}

function policy(session: FakeSession, clock: { t: number }, keepalive = { keepaliveTimeMs: 3_600_000, keepaliveTimeoutMs: 20_000 }) {
  const metrics = new Metrics({ defaultMetrics: false });
  const p = new ConnectionPolicy(
    session as unknown as Http2Session,
    { ...DEFAULT_CONNECTION_POLICY, ...keepalive },
    metrics,
    silentLogger(),
    () => clock.t,
  );
  p.start();
  return { p, metrics };
}

describe('client pings', () => {
  test('a ping every 30 s (the shipped envoy-config) is accepted for as long as it goes on', () => {
    const session = new FakeSession();
    const clock = { t: 0 };
    const { p } = policy(session, clock);
    for (let i = 0; i < 200; i++) {
      clock.t += 30_000;
      session.emit('ping');
    }
    assert.equal(session.goawayCode, undefined);
    p.stop();
  });

  test('a ping flood gets GOAWAY ENHANCE_YOUR_CALM after the allowed strikes', async () => {
    const session = new FakeSession();
    const clock = { t: 0 };
    const { p, metrics } = policy(session, clock);
    for (let i = 0; i < 10; i++) {
      clock.t += 100;
      session.emit('ping');
    }
    assert.equal(session.goawayCode, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(await metricTotal(metrics.connectionsRefused), 1);
    p.stop();
  });

  test('a ping right after data (bandwidth probing, as grpc-go clients do) is not a strike', () => {
    const session = new FakeSession();
    const clock = { t: 0 };
    const { p } = policy(session, clock);
    for (let i = 0; i < 50; i++) {
      clock.t += 100;
      p.noteWrite();
      session.emit('ping');
    }
    assert.equal(session.goawayCode, undefined);
    p.stop();
  });
});

describe('server keepalive', () => {
  test('the server pings; a peer that answers stays', async () => {
    const session = new FakeSession();
    const { p } = policy(session, { t: 0 }, { keepaliveTimeMs: 10, keepaliveTimeoutMs: 1000 });
    await until(() => session.pingsSent >= 3, 5000, 'server pings');
    assert.equal(session.destroyed, false);
    p.stop();
  });

  test('a peer that does not answer within the timeout is disconnected', async () => {
    const session = new FakeSession();
    session.answerPings = false;
    const { metrics } = policy(session, { t: 0 }, { keepaliveTimeMs: 10, keepaliveTimeoutMs: 30 });
    await until(() => session.destroyed, 5000, 'disconnect');
    assert.equal(await metricTotal(metrics.connectionsRefused), 1);
  });
});

describe('rapid reset', () => {
  test('resets before a first request draw from a bucket that refills: a slow trickle is fine, a burst is not', async () => {
    const session = new FakeSession();
    const clock = { t: 0 };
    const { p, metrics } = policy(session, clock);
    for (let i = 0; i < 5000; i++) {
      clock.t += 20; // 50 per second, under the refill rate
      p.noteRapidReset();
    }
    assert.equal(session.goawayCode, undefined);
    for (let i = 0; i < DEFAULT_CONNECTION_POLICY.rapidResetBurst + 1; i++) p.noteRapidReset();
    assert.equal(session.goawayCode, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(await metricTotal(metrics.rapidResets), 5000 + DEFAULT_CONNECTION_POLICY.rapidResetBurst + 1);
    p.stop();
  });
});
