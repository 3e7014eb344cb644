// Bad input: a clear error or log line, the stream or the last good secret survives,
// nothing crashes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeEnvoy, pemOf } from '../support/fake-envoy.js';
import { makeFixtures, makeLeafExpired, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';
import { makeKey } from '../support/openssl-certs.js';

let server: TestServer;
let fx: Fixtures;
let envoy: FakeEnvoy;

before(async () => {
  fx = makeFixtures();
  server = await startTestServer({ limits: { maxNamesPerStream: 10, maxMessageBytes: 64 * 1024 } });
  envoy = new FakeEnvoy(server.grpcAddress!);
  server.put('good', tls(fx.web1));
});
after(async () => {
  for (const c of rawClients) c.close();
  envoy.close();
  await server.stop();
});

/** A raw client that sends arbitrary bytes as the request message. */
const rawClients: grpc.Client[] = [];
function rawStream(method: string): grpc.ClientDuplexStream<Buffer, Buffer> {
  const client = new grpc.Client(server.grpcAddress!, grpc.credentials.createInsecure());
  rawClients.push(client);
  return client.makeBidiStreamRequest(
    `/envoy.service.secret.v3.SecretDiscoveryService/${method}`,
    (b: Buffer) => b,
    (b: Buffer) => b,
  );
}

function endStatus(call: grpc.ClientDuplexStream<Buffer, Buffer>): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on('error', () => undefined);
    call.on('data', () => undefined);
    call.on('status', resolve);
  });
}

describe('bad input', () => {
  test('a garbled request message fails that stream with INTERNAL/INVALID; the server keeps serving', async () => {
    const call = rawStream('StreamSecrets');
    const st = endStatus(call);
    call.write(Buffer.from([0xff, 0xff, 0xff])); // an invalid tag: cannot decode
    const s = await st;
    assert.equal(s.code, grpc.status.INTERNAL);
    const r = await envoy.fetch(['good']);
    assert.equal(r.secrets[0]!.name, 'good');
  });

  test('an oversized request is refused with RESOURCE_EXHAUSTED', async () => {
    const call = rawStream('StreamSecrets');
    const st = endStatus(call);
    call.write(Buffer.alloc(128 * 1024, 0));
    assert.equal((await st).code, grpc.status.RESOURCE_EXHAUSTED);
  });

  test('too many names ends the stream with RESOURCE_EXHAUSTED and a clear message', async () => {
    const s = envoy.sotw();
    s.request({ names: Array.from({ length: 11 }, (_, i) => `n${i}`) });
    const err = await s.closedWith();
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(err.details, /at most 10 names/);
  });

  test('an unknown type URL on StreamSecrets is refused', async () => {
    const s = envoy.sotw();
    s.request({ names: ['good'], typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener' });
    assert.equal((await s.closedWith()).code, grpc.status.UNIMPLEMENTED);
  });

  test('a PEM that does not parse is rejected; the last good version is still served', async () => {
    const before = server.store.get('good')!.version;
    const r = server.put('good', {
      kind: 'tls_certificate',
      certificateChain: '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n',
      privateKey: fx.web1.keyPem,
    });
    assert.equal(r.outcome, 'rejected');
    assert.equal(server.store.get('good')!.version, before);
    const got = await envoy.fetch(['good']);
    assert.equal(pemOf(got.secrets[0]!.tls_certificate!.certificate_chain), fx.web1.certPem);
  });

  test('a key that does not match the certificate is rejected with KEY_MISMATCH, and the key never reaches the log', async () => {
    const wrongKey = makeKey();
    const r = server.put('good', { kind: 'tls_certificate', certificateChain: fx.web1.certPem, privateKey: wrongKey });
    assert.equal(r.outcome, 'rejected');
    assert.ok(r.outcome === 'rejected' && r.code === 'KEY_MISMATCH', `code ${r.outcome === 'rejected' ? r.code : ''}`);
    const body = wrongKey.split('\n').slice(1, -2).join('');
    assert.ok(!server.logText().includes(body.slice(0, 40)), 'key material in logs');
    assert.ok(server.logs.some((l) => l['msg'] === 'secret update rejected; the last good version stays' && l['code'] === 'KEY_MISMATCH'));
  });

  test('a chain in the wrong order is rejected', async () => {
    const r = server.put('good', {
      kind: 'tls_certificate',
      certificateChain: fx.ca.certPem + fx.web1.certPem,
      privateKey: fx.web1.keyPem,
    });
    assert.equal(r.outcome, 'rejected');
  });

  test('a validation context must hold CA certificates', async () => {
    const r = server.put('ca-bad', { kind: 'validation_context', trustedCa: fx.web1.certPem });
    assert.equal(r.outcome, 'rejected');
    assert.equal(server.store.get('ca-bad'), undefined);
  });

  test('an expired certificate is served, with a warning in the log and in status', async () => {
    const expired = makeLeafExpired(fx);
    const r = server.put('expired', tls(expired));
    assert.equal(r.outcome, 'created');
    assert.ok(server.store.get('expired')!.warnings.length > 0);
    assert.ok(server.logs.some((l) => l['msg'] === 'serving secret with warnings' && l['secret'] === 'expired'));
    const got = await envoy.fetch(['expired']);
    assert.equal(got.secrets[0]!.name, 'expired');
  });

  test('an oversized secret is rejected', async () => {
    const big = fx.web1.certPem + '\n'.repeat(300 * 1024);
    const r = server.put('big', { kind: 'tls_certificate', certificateChain: big, privateKey: fx.web1.keyPem });
    assert.equal(r.outcome, 'rejected');
  });
});
