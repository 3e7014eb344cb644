// What one HTTP/2 connection may do: cancel thousands of streams and keep the rest, but
// not flood resets (CVE-2023-44487) or pings; at most one unsent response per stream;
// and a drain that says GOAWAY with the last stream id and ends streams with OK.
import assert from 'node:assert/strict';
import { constants } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { STREAM_SECRETS, RawConnection, type RawStream } from '../support/raw-grpc.js';
import {
  caBundle,
  makeFixtures,
  metricTotal,
  startTestServer,
  tls,
  until,
  type Fixtures,
  type TestServer,
} from '../support/test-server.js';

let fx: Fixtures;
before(() => {
  fx = makeFixtures();
});

describe('mass cancellation and rapid reset', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    server.put('web', tls(fx.web1));
    server.put('keeper', tls(fx.other));
  });
  after(() => server.stop());

  test('a client that cancels 5,000 served streams at once keeps its connection and its other streams', async () => {
    const conn = new RawConnection(`http://${server.grpcAddress}`);
    try {
      const keeper = conn.open(STREAM_SECRETS);
      keeper.request(['keeper']);
      const first = await keeper.response(0);
      keeper.request(['keeper'], { nonce: first.nonce, version: first.version_info });
      const streams: RawStream[] = [];
      for (let i = 0; i < 5000; i++) {
        const s = conn.open(STREAM_SECRETS);
        s.request(['web']);
        streams.push(s);
      }
      await until(() => streams.every((s) => s.messages.length > 0), 60_000, '5,000 first responses');
      for (const s of streams) s.stream.close(constants.NGHTTP2_CANCEL);
      await until(() => server.registry.size === 1, 30_000, 'the cancelled streams released');
      server.put('keeper', tls(fx.web2));
      const pushed = await keeper.response(1, 10_000);
      assert.equal(pushed.secrets[0]!.name, 'keeper');
      assert.equal(conn.goaway, undefined, 'no GOAWAY');
      assert.equal(conn.session.destroyed, false);
      assert.equal(await metricTotal(server.metrics.rapidResets), 0, 'served streams are not rapid resets');
    } finally {
      conn.close();
    }
  });

  test('streams reset before their first request are counted, and a flood of them closes the connection', async () => {
    const conn = new RawConnection(`http://${server.grpcAddress}`);
    try {
      for (let i = 0; i < 3000 && !conn.goaway && !conn.session.destroyed; i++) {
        const req = conn.session.request({
          ':method': 'POST',
          ':path': STREAM_SECRETS,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        req.on('error', () => {});
        // Reset as soon as the HEADERS are out, before any request message.
        setImmediate(() => req.close(constants.NGHTTP2_CANCEL));
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      }
      await until(() => conn.goaway !== undefined || conn.session.destroyed, 30_000, 'the connection to be closed');
      assert.equal(conn.goaway?.code, constants.NGHTTP2_ENHANCE_YOUR_CALM);
      assert.ok((await metricTotal(server.metrics.rapidResets)) >= 1000);
      assert.equal(await metricTotal(server.metrics.connectionsRefused), 1);
    } finally {
      conn.close();
    }
    // Other connections are served as before.
    const other = new RawConnection(`http://${server.grpcAddress}`);
    try {
      const s = other.open(STREAM_SECRETS);
      s.request(['web']);
      assert.equal((await s.response(0)).secrets[0]!.name, 'web');
    } finally {
      other.close();
    }
  });
});

describe('back-pressure', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('a stream that does not read holds one unsent response; on drain it gets the newest version only', async () => {
    // A bundle of some 40 KB: beyond the 1 KB window plus what the client buffers.
    const bundle = (copies: number) => caBundle(...Array.from({ length: copies }, () => fx.ca));
    server.put('bundle', bundle(60));
    // A 1 KB flow-control window, and the client reads nothing until told.
    const conn = new RawConnection(`http://${server.grpcAddress}`, { initialWindowSize: 1024 });
    try {
      const s = conn.open(STREAM_SECRETS, {}, { paused: true });
      s.request(['bundle']);
      await until(() => s.headers !== undefined, 5000, 'response headers');
      const pushes = await metricTotal(server.metrics.pushes);
      // Ten versions while the first response is stuck behind the window.
      for (let i = 0; i < 10; i++) {
        server.put('bundle', bundle(61 + i));
        await new Promise((r) => setTimeout(r, 5));
      }
      server.put('bundle', bundle(80));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await metricTotal(server.metrics.pushes), pushes, 'nothing more written while the first response is unsent');
      s.resume();
      await until(() => s.messages.length >= 2, 10_000, 'the drained push');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s.messages.length, 2, 'the first response, then one push with the newest version');
      const newest = await s.response(1);
      assert.equal(newest.version_info, server.store.get('bundle')!.version);
    } finally {
      conn.close();
    }
  });
});

describe('keepalive', () => {
  test('the server pings; a client pinging every keepalive interval is accepted, a ping flood is refused', async () => {
    const server = await startTestServer({ limits: { keepaliveTimeMs: 200, keepaliveTimeoutMs: 2000 } });
    try {
      server.put('web', tls(fx.web1));
      const conn = new RawConnection(`http://${server.grpcAddress}`);
      let serverPings = 0;
      conn.session.on('ping', () => serverPings++);
      const s = conn.open(STREAM_SECRETS);
      s.request(['web']);
      await s.response(0);
      await until(() => serverPings >= 2, 5000, 'server pings');
      // One ping (as Envoy sends every 30 s) is fine; a burst is not.
      await new Promise<void>((r) => conn.session.ping(() => r()));
      assert.equal(conn.goaway, undefined);
      for (let i = 0; i < 10 && !conn.goaway; i++) {
        await new Promise<void>((r) => {
          try {
            conn.session.ping(() => r());
          } catch {
            r();
          }
        });
      }
      await until(() => conn.goaway !== undefined, 5000, 'GOAWAY');
      assert.equal(conn.goaway!.code, constants.NGHTTP2_ENHANCE_YOUR_CALM);
      assert.equal(conn.goaway!.debug, 'too_many_pings');
      conn.close();
    } finally {
      await server.stop();
    }
  });
});

describe('drain', () => {
  test('on stop each connection gets GOAWAY with its last stream id and its streams end with OK, spread over drainSeconds', async () => {
    const server = await startTestServer({ drainSeconds: 2 });
    server.put('web', tls(fx.web1));
    const conns = [0, 1, 2].map(() => new RawConnection(`http://${server.grpcAddress}`));
    const streams: RawStream[] = [];
    for (const c of conns) {
      for (let i = 0; i < 3; i++) {
        const s = c.open(STREAM_SECRETS);
        s.request(['web']);
        streams.push(s);
      }
    }
    await Promise.all(streams.map((s) => s.response(0)));
    // When the first connection hears GOAWAY, the others have heard nothing yet.
    const othersAtFirstGoaway: Array<boolean> = [];
    for (const c of conns) {
      c.session.once('goaway', () => {
        if (othersAtFirstGoaway.length === 0) othersAtFirstGoaway.push(...conns.filter((o) => o !== c).map((o) => o.goaway === undefined));
      });
    }
    await server.stop();
    await Promise.all(streams.map((s) => s.ended(5000)));
    for (const s of streams) assert.equal(s.status?.code, status.OK);
    for (const c of conns) {
      assert.equal(c.goaway?.code, constants.NGHTTP2_NO_ERROR);
      assert.equal(c.goaway?.lastStreamID, 5, 'three streams: ids 1, 3, 5');
      c.close();
    }
    assert.deepEqual(othersAtFirstGoaway, [true, true], 'GOAWAY goes to one connection at a time');
  });
});
