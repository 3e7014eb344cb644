// Connection bounds that do not depend on the client behaving: an idle timeout only for
// connections with no open stream, a per-peer limit only before authentication, and
// descriptors kept in reserve for the sources.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { describe, test } from 'node:test';
import { connectionBudget } from '../../src/transport/descriptor-budget.js';
import { STREAM_SECRETS, RawConnection, RawStream, grpcHeaders } from '../support/raw-grpc.js';
import { makeFixtures, metricTotal, startTestServer, tls, until } from '../support/test-server.js';

const fx = makeFixtures();

/** An HTTP/2 connection from a chosen loopback source address (another "peer"). */
function connectFrom(address: string, localAddress: string): { session: ClientHttp2Session; closed: () => boolean; open: () => boolean } {
  const i = address.lastIndexOf(':');
  const [host, port] = [address.slice(0, i), Number(address.slice(i + 1))];
  let closed = false;
  let open = false;
  const session = h2connect(`http://${address}`, { createConnection: () => netConnect({ host, port, localAddress }) });
  session.on('error', () => {});
  session.on('connect', () => (open = true));
  session.on('close', () => (closed = true));
  return { session, closed: () => closed, open: () => open };
}

function refusedBy(reason: string, m: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number> }> }> }) {
  return m.get().then((r) => r.values.filter((v) => v.labels['reason'] === reason).reduce((a, v) => a + v.value, 0));
}

describe('idle connections', () => {
  test('a connection with no open stream is closed after the idle timeout; one with a stream is not', async () => {
    const server = await startTestServer({ limits: { idleConnectionTimeoutMs: 300 } });
    try {
      server.put('web', tls(fx.web1));
      const busy = new RawConnection(`http://${server.grpcAddress}`);
      const s = busy.open(STREAM_SECRETS);
      s.request(['web']);
      await s.response(0);
      const idle = connectFrom(server.grpcAddress!, '127.0.0.1');
      await until(() => idle.closed(), 10_000, 'the idle connection to be closed');
      assert.equal(await refusedBy('idle', server.metrics.connectionsRefused), 1);
      // The busy connection, older than the idle one, is still served.
      assert.equal(busy.session.closed || busy.session.destroyed, false);
      server.put('web', tls(fx.web2));
      assert.equal((await s.response(1)).secrets[0]!.name, 'web');
      // Once its last stream ends, it is idle too.
      s.stream.close();
      await until(() => busy.goaway !== undefined, 10_000, 'GOAWAY to the now idle connection');
      busy.close();
      idle.session.destroy();
    } finally {
      await server.stop();
    }
  });
});

describe('per-peer limit before authentication', () => {
  test('a peer holds at most N unauthenticated connections; other peers, and authenticated connections, are not limited', async () => {
    const server = await startTestServer({ limits: { maxUnauthenticatedConnectionsPerPeer: 3 } });
    const sessions: Array<ReturnType<typeof connectFrom>> = [];
    try {
      server.put('web', tls(fx.web1));
      for (let i = 0; i < 3; i++) sessions.push(connectFrom(server.grpcAddress!, '127.0.0.2'));
      await until(() => sessions.every((s) => s.open()), 5000, 'three connections');
      const fourth = connectFrom(server.grpcAddress!, '127.0.0.2');
      sessions.push(fourth);
      await until(() => fourth.closed(), 5000, 'the fourth connection refused');
      assert.equal(await refusedBy('unauthenticated_per_peer', server.metrics.connectionsRefused), 1);
      assert.ok(
        sessions.slice(0, 3).every((s) => !s.closed()),
        'the first three stay',
      );

      // Another peer address is served meanwhile.
      const other = new RawConnection(`http://${server.grpcAddress}`);
      const o = other.open(STREAM_SECRETS);
      o.request(['web']);
      await o.response(0);
      other.close();

      // A stream that authenticates (loopback identity) frees its connection's slot.
      const authed = new RawStream(sessions[0]!.session.request(grpcHeaders(STREAM_SECRETS)));
      authed.request(['web']);
      await authed.response(0);
      const fifth = connectFrom(server.grpcAddress!, '127.0.0.2');
      sessions.push(fifth);
      await until(() => fifth.open(), 5000, 'a new connection accepted');
      const f = new RawStream(fifth.session.request(grpcHeaders(STREAM_SECRETS)));
      f.request(['web']);
      assert.equal((await f.response(0)).secrets[0]!.name, 'web');
      assert.equal(await refusedBy('unauthenticated_per_peer', server.metrics.connectionsRefused), 1);
    } finally {
      for (const s of sessions) s.session.destroy();
      await server.stop();
    }
  });
});

describe('descriptors kept in reserve', () => {
  test('the budget is the open-files limit less what is open less the reserve', () => {
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    assert.ok(limit, 'this test runs on Linux with a finite open-files limit');
    const budget = connectionBudget(100)!;
    const open = readdirSync('/proc/self/fd').length;
    assert.ok(Math.abs(budget - (Number(limit) - open - 100)) <= 2, `budget ${budget}, limit ${limit}, open ${open}`);
  });

  test('connections past the budget are refused as they arrive and counted; the connections within it are served', async () => {
    const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1]);
    // A reserve that leaves room for only a few connections.
    const reserve = limit - readdirSync('/proc/self/fd').length - 3;
    const server = await startTestServer({ limits: { reservedFileDescriptors: reserve } });
    const conns: RawConnection[] = [];
    try {
      server.put('web', tls(fx.web1));
      for (let i = 0; i < 10; i++) conns.push(new RawConnection(`http://${server.grpcAddress}`));
      const dropped = async () => refusedBy('descriptor_reserve', server.metrics.connectionsRefused);
      const deadline = Date.now() + 5000;
      while ((await dropped()) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok((await dropped()) >= 1, 'connections past the budget were dropped');
      // The first connection is within the budget and served.
      const s = conns[0]!.open(STREAM_SECRETS);
      s.request(['web']);
      assert.equal((await s.response(0)).secrets[0]!.name, 'web');
      assert.ok((await metricTotal(server.metrics.connectionsRefused)) >= 1);
    } finally {
      for (const c of conns) c.close();
      await server.stop();
    }
  });
});
