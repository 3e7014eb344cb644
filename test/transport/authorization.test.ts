// Transports and the local policy: mTLS identities (SPIFFE URI, DNS SAN), the Unix
// socket and its mode, and denied names that are never sent nor revealed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { makeCa, makeClientCert, makeLeaf, type Pair } from '../support/openssl-certs.js';
import { makeFixtures, startTestServer, tls, until, type Fixtures, type TestServer } from '../support/test-server.js';

let dir: string;
let fx: Fixtures;
let serverCa: Pair;
let serverCert: Pair;
let clientCa: Pair;

const clientCert = makeClientCert;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sds-authz-'));
  fx = makeFixtures();
  serverCa = makeCa('SDS server CA');
  serverCert = makeLeaf(serverCa, ['localhost']);
  clientCa = makeCa('Gateway client CA');
  writeFileSync(join(dir, 'server.crt'), serverCert.certPem);
  writeFileSync(join(dir, 'server.key'), serverCert.keyPem);
  writeFileSync(join(dir, 'client-ca.crt'), clientCa.certPem);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function mtlsEnvoy(server: TestServer, client: Pair | undefined): FakeEnvoy {
  const creds = grpc.credentials.createSsl(
    Buffer.from(serverCa.certPem),
    client ? Buffer.from(client.keyPem) : null,
    client ? Buffer.from(client.certPem) : null,
  );
  return new FakeEnvoy(server.grpcAddress!.replace('127.0.0.1', 'localhost'), { credentials: creds });
}

describe('mTLS: identity from the client certificate', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      grpc: {
        tcp: {
          address: '127.0.0.1:0',
          tls: {
            certFile: join(dir, 'server.crt'),
            keyFile: join(dir, 'server.key'),
            clientCaFile: join(dir, 'client-ca.crt'),
            requireClientCert: true,
          },
        },
      },
      authorization: {
        rules: [
          { identities: ['spiffe://example.org/ns/gateway/sa/gw'], names: ['web', 'web-cacert'] },
          { identities: ['dns:edge.example.org'], names: ['edge-*'] },
        ],
      },
    });
    server.put('web', tls(fx.web1));
    server.put('edge-1', tls(fx.other));
    server.put('secret-of-someone-else', tls(fx.web2));
  });
  after(() => server.stop());

  test('a SPIFFE ID allowed by the policy is served', async () => {
    const envoy = mtlsEnvoy(server, clientCert(clientCa, 'URI:spiffe://example.org/ns/gateway/sa/gw'));
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    const r = await s.response();
    assert.equal(r.secrets[0]!.name, 'web');
    const st = server.registry.list().find((x) => x.names.has('web'))!;
    assert.equal(st.identity.kind, 'x509');
    assert.equal(st.identity.principals[0], 'spiffe://example.org/ns/gateway/sa/gw');
    envoy.close();
  });

  test('a DNS SAN identity matches dns: patterns', async () => {
    const envoy = mtlsEnvoy(server, clientCert(clientCa, 'DNS:edge.example.org'));
    const s = envoy.sotw();
    s.request({ names: ['edge-1'] });
    assert.equal((await s.response()).secrets[0]!.name, 'edge-1');
    envoy.close();
  });

  test('a denied name is never sent, is logged with the caller, and looks exactly like a missing one', async () => {
    const envoy = mtlsEnvoy(server, clientCert(clientCa, 'URI:spiffe://example.org/ns/gateway/sa/gw'));
    const exists = envoy.sotw();
    const missing = envoy.sotw();
    exists.request({ names: ['secret-of-someone-else'] });
    missing.request({ names: ['no-such-secret'] });
    await until(() => server.logs.filter((l) => l['msg'] === 'secret name denied to caller').length >= 2, 5000, 'denials logged');
    await exists.nothing();
    await missing.nothing();
    const denial = server.logs.find((l) => l['msg'] === 'secret name denied to caller' && l['secret'] === 'secret-of-someone-else')!;
    assert.equal(denial['identity'], 'x509:spiffe://example.org/ns/gateway/sa/gw');
    // Fetch answers both with the same code and shape.
    const errs = await Promise.all(
      ['secret-of-someone-else', 'no-such-secret'].map((n) =>
        envoy.fetch([n]).then(
          () => undefined,
          (e: grpc.ServiceError) => e,
        ),
      ),
    );
    assert.equal(errs[0]!.code, grpc.status.PERMISSION_DENIED);
    assert.equal(errs[1]!.code, grpc.status.PERMISSION_DENIED);
    assert.equal(errs[0]!.details.replace('secret-of-someone-else', 'X'), errs[1]!.details.replace('no-such-secret', 'X'));
    envoy.close();
  });

  test('a client without a certificate cannot connect', async () => {
    const envoy = mtlsEnvoy(server, undefined);
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    const err = await s.closedWith();
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    envoy.close();
  });

  test('a client certificate from another CA is refused', async () => {
    const envoy = mtlsEnvoy(server, clientCert(makeCa('Rogue CA'), 'URI:spiffe://example.org/ns/gateway/sa/gw'));
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    assert.equal((await s.closedWith()).code, grpc.status.UNAVAILABLE);
    envoy.close();
  });
});

describe('Unix socket', () => {
  let server: TestServer;
  const sock = () => join(dir, 'run', 'sds.sock');
  before(async () => {
    server = await startTestServer({
      grpc: { unix: { path: sock() } },
      authorization: { rules: [{ identities: ['unix'], names: ['web'] }] },
    });
    server.put('web', tls(fx.web1));
  });
  after(() => server.stop());

  test('the socket is created with mode 0600 by default', () => {
    assert.equal(statSync(sock()).mode & 0o777, 0o600);
  });

  test('a caller on the socket gets the unix identity and is served', async () => {
    const envoy = new FakeEnvoy(`unix:${sock()}`);
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    assert.equal((await s.response()).secrets[0]!.name, 'web');
    assert.equal(server.registry.list()[0]!.identity.kind, 'unix');
    envoy.close();
  });
});

describe('TCP without TLS', () => {
  test('a loopback-only policy serves loopback callers, and nothing else is allowed by default', async () => {
    const server = await startTestServer({ authorization: { rules: [{ identities: ['loopback'], names: ['web'] }] } });
    try {
      server.put('web', tls(fx.web1));
      server.put('other', tls(fx.other));
      const envoy = new FakeEnvoy(server.grpcAddress!);
      assert.equal((await envoy.fetch(['web'])).secrets[0]!.name, 'web');
      await assert.rejects(envoy.fetch(['other']), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
      envoy.close();
    } finally {
      await server.stop();
    }
  });
});
