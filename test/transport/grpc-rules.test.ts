// The gRPC-over-HTTP/2 rules our transport follows, each checked on the wire with a
// hand-written HTTP/2 client (test/support/raw-grpc.ts), as Envoy's clients would see them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { Authenticator, PeerInfo } from '../../src/authz/authorizer.js';
import { PeerAuthenticator } from '../../src/authz/peer-authenticator.js';
import { FETCH_SECRETS, STREAM_SECRETS, RawConnection, RawStream, discoveryRequest, frame, gzipFrame } from '../support/raw-grpc.js';
import {
  eventually,
  makeFixtures,
  metricTotal,
  startTestServer,
  tls,
  until,
  type Fixtures,
  type TestServer,
} from '../support/test-server.js';

let fx: Fixtures;
let server: TestServer;
let conn: RawConnection;
const seen: PeerInfo[] = [];

class RecordingAuthenticator implements Authenticator {
  private readonly inner = new PeerAuthenticator();
  authenticate(peer: PeerInfo) {
    seen.push(peer);
    return this.inner.authenticate(peer);
  }
}

before(async () => {
  fx = makeFixtures();
  server = await startTestServer({ limits: { maxMessageBytes: 4096 } }, { authenticator: new RecordingAuthenticator() });
  server.put('web', tls(fx.web1));
  conn = new RawConnection(`http://${server.grpcAddress}`);
});
after(async () => {
  conn.close();
  await server.stop();
});

describe('gRPC rules on the wire', () => {
  test('content-type application/grpc is served, with status 200 and application/grpc', async () => {
    const s = conn.open(STREAM_SECRETS);
    s.request(['web']);
    const r = await s.response(0);
    assert.equal(r.secrets[0]!.name, 'web');
    assert.equal(s.headers?.[':status'], 200);
    assert.match(String(s.headers?.['content-type']), /^application\/grpc/);
    assert.equal(s.headers?.['grpc-status'], undefined, 'status comes in trailers, not with the first headers');
    s.stream.close();
  });

  test('content-type application/grpc+proto is served too', async () => {
    const s = conn.open(STREAM_SECRETS, { 'content-type': 'application/grpc+proto' });
    s.request(['web']);
    assert.equal((await s.response(0)).secrets[0]!.name, 'web');
    s.stream.close();
  });

  test('te: trailers is sent by gRPC clients; a request without it (a proxy dropped it) is still served, as grpc-go does', async () => {
    const s = new RawStream(conn.session.request({ ':method': 'POST', ':path': STREAM_SECRETS, 'content-type': 'application/grpc' }));
    s.request(['web']);
    assert.equal((await s.response(0)).secrets[0]!.name, 'web');
    s.stream.close();
  });

  test('another content-type is refused with HTTP 415 (not a gRPC success)', async () => {
    const s = conn.open(STREAM_SECRETS, { 'content-type': 'application/json' });
    s.stream.end();
    await s.ended();
    assert.equal(s.headers?.[':status'], 415);
    assert.ok(s.trailersOnly);
  });

  test('an unknown method is UNIMPLEMENTED, as a trailers-only response', async () => {
    const s = conn.open('/envoy.service.secret.v3.SecretDiscoveryService/NoSuchMethod');
    s.stream.end(frame(discoveryRequest(['web'])));
    const st = await s.ended();
    assert.equal(st.code, status.UNIMPLEMENTED);
    assert.ok(s.trailersOnly, 'grpc-status came with the headers, END_STREAM set');
    assert.equal(s.headers?.[':status'], 200);
  });

  test('an error before any response is trailers-only; after a response it is in the trailers', async () => {
    const early = conn.open(STREAM_SECRETS);
    early.request(['web'], { typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' });
    assert.equal((await early.ended()).code, status.UNIMPLEMENTED);
    assert.ok(early.trailersOnly);

    const late = conn.open(STREAM_SECRETS);
    late.request(['web']);
    const r = await late.response(0);
    late.request(['web'], { nonce: r.nonce, version: r.version_info, typeUrl: 'type.googleapis.com/other' });
    assert.notEqual((await late.ended()).code, status.OK);
    assert.equal(late.trailersOnly, false);
    assert.ok(late.trailers?.['grpc-status'], 'grpc-status in the trailers');
  });

  test('grpc-message is percent-encoded (UTF-8 bytes and "%")', async () => {
    const s = conn.open(FETCH_SECRETS);
    s.stream.end(frame(discoveryRequest(['nö%pe'])));
    const st = await s.ended();
    assert.equal(st.code, status.NOT_FOUND);
    assert.match(st.message, /n%C3%B6%25pe/);
    assert.doesNotMatch(st.message, /[^\x20-\x7e]/);
  });

  test('a gzip-compressed request (grpc-encoding: gzip, flag 1) is accepted', async () => {
    const s = conn.open(STREAM_SECRETS, { 'grpc-encoding': 'gzip' });
    s.send(gzipFrame(discoveryRequest(['web'])));
    assert.equal((await s.response(0)).secrets[0]!.name, 'web');
    assert.match(String(s.headers?.['grpc-accept-encoding']), /gzip/);
    s.stream.close();
  });

  test('an unsupported grpc-encoding is UNIMPLEMENTED and names the accepted ones', async () => {
    const s = conn.open(STREAM_SECRETS, { 'grpc-encoding': 'snappy' });
    s.stream.end();
    assert.equal((await s.ended()).code, status.UNIMPLEMENTED);
    assert.equal(s.headers?.['grpc-accept-encoding'], 'identity,gzip');
  });

  test('a compressed message without grpc-encoding is INTERNAL (protocol error)', async () => {
    const s = conn.open(STREAM_SECRETS);
    s.send(gzipFrame(discoveryRequest(['web'])));
    assert.equal((await s.ended()).code, status.INTERNAL);
  });

  test('grpc-timeout is honoured: the call ends with DEADLINE_EXCEEDED and the stream is closed', async () => {
    const s = conn.open(STREAM_SECRETS, { 'grpc-timeout': '300m' });
    s.request(['web']);
    await s.response(0);
    await until(() => server.registry.list().some((x) => x.names.has('web')), 5000, 'stream registered');
    const before = server.registry.size;
    assert.equal((await s.ended()).code, status.DEADLINE_EXCEEDED);
    await until(() => server.registry.size < before, 5000, 'stream state released');
  });

  test('a malformed grpc-timeout is refused', async () => {
    const s = conn.open(STREAM_SECRETS, { 'grpc-timeout': 'soon' });
    s.stream.end();
    assert.notEqual((await s.ended()).code, status.OK);
  });

  test('a message over the limit is RESOURCE_EXHAUSTED, refused from its length prefix alone', async () => {
    const s = conn.open(STREAM_SECRETS);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(1_000_000, 1); // announces 1 MB, sends 5 bytes
    s.send(prefix);
    assert.equal((await s.ended()).code, status.RESOURCE_EXHAUSTED);
  });

  test('a compressed message that inflates over the limit is RESOURCE_EXHAUSTED', async () => {
    const s = conn.open(STREAM_SECRETS, { 'grpc-encoding': 'gzip' });
    s.send(gzipFrame(discoveryRequest(['x'.repeat(100_000)])));
    assert.equal((await s.ended()).code, status.RESOURCE_EXHAUSTED);
  });

  test('authorization metadata is read once per stream, from the request headers', async () => {
    seen.length = 0;
    const acks = await metricTotal(server.metrics.acks);
    const s = conn.open(STREAM_SECRETS, { authorization: 'Bearer abc' });
    s.request(['web']);
    const r = await s.response(0);
    s.request(['web'], { nonce: r.nonce, version: r.version_info });
    s.request(['web'], { nonce: r.nonce, version: r.version_info });
    await eventually(async () => (await metricTotal(server.metrics.acks)) >= acks + 2, 5000, 'both ACKs processed');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.authorization, 'Bearer abc');
    assert.equal(seen[0]!.listener, 'tcp');
    s.stream.close();
  });

  test('a unary call with no request message is an error, not a hang', async () => {
    const s = conn.open(FETCH_SECRETS);
    s.stream.end();
    assert.notEqual((await s.ended()).code, status.OK);
  });

  test('FetchSecrets answers with one message and OK in the trailers', async () => {
    const s = conn.open(FETCH_SECRETS);
    s.stream.end(frame(discoveryRequest(['web'])));
    assert.equal((await s.ended()).code, status.OK);
    assert.equal(s.messages.length, 1);
  });
});

describe('grpc.health.v1 on the h2c listener', () => {
  const check = async (service: string) => {
    const body = service ? Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)]) : Buffer.alloc(0);
    const s = conn.open('/grpc.health.v1.Health/Check');
    s.stream.end(frame(body));
    return { status: await s.ended(), messages: s.messages };
  };

  test('Check for the server ("") answers SERVING while ready', async () => {
    const r = await check('');
    assert.equal(r.status.code, status.OK);
    assert.deepEqual([...r.messages[0]!], [0x08, 0x01]);
  });

  test('Check for an unknown service is NOT_FOUND', async () => {
    assert.equal((await check('no.such.Service')).status.code, status.NOT_FOUND);
  });

  test('NOT_SERVING while a declared secret is not loaded', async () => {
    const s2 = await startTestServer({
      secrets: [{ name: 'declared', tlsCertificate: { certificateChainFile: '/nonexistent/c.pem', privateKeyFile: '/nonexistent/k.pem' } }],
    });
    const c2 = new RawConnection(`http://${s2.grpcAddress}`);
    try {
      const s = c2.open('/grpc.health.v1.Health/Check');
      s.stream.end(frame(Buffer.alloc(0)));
      assert.equal((await s.ended()).code, status.OK);
      assert.deepEqual([...s.messages[0]!], [0x08, 0x02]);
    } finally {
      c2.close();
      await s2.stop();
    }
  });
});
