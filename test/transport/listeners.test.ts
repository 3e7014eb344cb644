// Listener-level behaviour of our transport: optional client certificates, TLS files
// reloaded under open streams, and bind failures that leave nothing listening.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { parseConfig } from '../../src/config/server-config.js';
import { LocalPolicy } from '../../src/authz/local-policy.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { clientBounds } from '../../src/sds/client-bounds.js';
import { StreamRegistry } from '../../src/sds/stream-status.js';
import { SecretStore } from '../../src/store/secret-store.js';
import { PeerAuthenticator } from '../../src/authz/peer-authenticator.js';
import { SdsListeners } from '../../src/transport/sds-listeners.js';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { makeCa, makeClientCert, makeLeaf, type Pair } from '../support/openssl-certs.js';
import { makeFixtures, startTestServer, tls, until, type Fixtures, type TestServer } from '../support/test-server.js';

let dir: string;
let fx: Fixtures;
let serverCa: Pair;
let clientCa: Pair;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sds-listeners-'));
  fx = makeFixtures();
  serverCa = makeCa('SDS server CA');
  clientCa = makeCa('Gateway client CA');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Replaces a file the way deployments do: write beside it, then rename over it. */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function envoyWith(server: TestServer, client: Pair | undefined, ca: Pair = serverCa): FakeEnvoy {
  const creds = grpc.credentials.createSsl(
    Buffer.from(ca.certPem),
    client ? Buffer.from(client.keyPem) : null,
    client ? Buffer.from(client.certPem) : null,
  );
  return new FakeEnvoy(server.grpcAddress!.replace('127.0.0.1', 'localhost'), { credentials: creds });
}

/** The certificate a fresh TLS handshake (ALPN h2) gets from the server. */
function handshakeCertificate(address: string): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

describe('TLS with an optional client certificate', () => {
  let server: TestServer;
  before(async () => {
    const serverCert = makeLeaf(serverCa, ['localhost']);
    writeFileSync(join(dir, 'opt.crt'), serverCert.certPem);
    writeFileSync(join(dir, 'opt.key'), serverCert.keyPem);
    writeFileSync(join(dir, 'opt-ca.crt'), clientCa.certPem);
    server = await startTestServer({
      grpc: {
        tcp: {
          address: '127.0.0.1:0',
          tls: {
            certFile: join(dir, 'opt.crt'),
            keyFile: join(dir, 'opt.key'),
            clientCaFile: join(dir, 'opt-ca.crt'),
            requireClientCert: false,
          },
        },
      },
      authorization: { rules: [{ identities: ['spiffe://example.org/gw'], names: ['web'] }] },
    });
    server.put('web', tls(fx.web1));
  });
  after(() => server.stop());

  test('a presented certificate that chains to the client CA is verified and is the identity', async () => {
    const envoy = envoyWith(server, makeClientCert(clientCa, 'URI:spiffe://example.org/gw'));
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    assert.equal((await s.response()).secrets[0]!.name, 'web');
    const st = server.registry.list().find((x) => x.identity.kind === 'x509')!;
    assert.deepEqual(st.identity.principals, ['spiffe://example.org/gw']);
    envoy.close();
  });

  test('no certificate: the connection is accepted and the caller is anonymous', async () => {
    const envoy = envoyWith(server, undefined);
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    await until(() => server.registry.list().some((x) => x.identity.kind === 'anonymous'), 5000, 'anonymous stream');
    await s.nothing();
    envoy.close();
  });

  test('a certificate from another CA is not an identity (anonymous, never its SAN)', async () => {
    const envoy = envoyWith(server, makeClientCert(makeCa('Rogue CA'), 'URI:spiffe://example.org/gw'));
    const s = envoy.sotw();
    s.request({ names: ['web'] });
    await until(() => server.registry.list().filter((x) => x.identity.kind === 'anonymous').length >= 1, 5000, 'anonymous stream');
    assert.ok(!server.registry.list().some((x) => x.identity.kind === 'x509'));
    await s.nothing();
    envoy.close();
  });
});

describe('TLS files reloaded', () => {
  test('a rotated certificate and client CA are used by new handshakes; open streams keep going', async () => {
    const first = makeLeaf(serverCa, ['localhost']);
    const second = makeLeaf(serverCa, ['localhost']);
    const newClientCa = makeCa('Gateway client CA 2');
    const files = { cert: join(dir, 'rot.crt'), key: join(dir, 'rot.key'), ca: join(dir, 'rot-ca.crt') };
    writeFileSync(files.cert, first.certPem);
    writeFileSync(files.key, first.keyPem);
    writeFileSync(files.ca, clientCa.certPem);
    const server = await startTestServer({
      grpc: {
        tcp: { address: '127.0.0.1:0', tls: { certFile: files.cert, keyFile: files.key, clientCaFile: files.ca, requireClientCert: true } },
      },
      authorization: { rules: [{ identities: ['spiffe://example.org/gw'], names: ['web'] }] },
    });
    try {
      server.put('web', tls(fx.web1));
      assert.equal(await handshakeCertificate(server.grpcAddress!), fingerprint(first.certPem));
      const open = envoyWith(server, makeClientCert(clientCa, 'URI:spiffe://example.org/gw'));
      const s = open.sotw();
      s.request({ names: ['web'] });
      s.ack(await s.response());

      // Key first, then certificate: in between the pair does not match and is skipped.
      replaceFile(files.key, second.keyPem);
      replaceFile(files.cert, second.certPem);
      replaceFile(files.ca, newClientCa.certPem);
      const want = fingerprint(second.certPem);
      let got = '';
      const deadline = Date.now() + 10_000;
      while (got !== want && Date.now() < deadline) {
        got = await handshakeCertificate(server.grpcAddress!);
        if (got !== want) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(got, want, 'a new handshake presents the new certificate');

      // The stream opened before the rotation still gets pushes.
      server.put('web', tls(fx.web2));
      const pushed = await s.response();
      assert.equal(pushed.secrets[0]!.name, 'web');

      // The new client CA decides for new connections.
      const fresh = envoyWith(server, makeClientCert(newClientCa, 'URI:spiffe://example.org/gw'));
      const f = fresh.sotw();
      f.request({ names: ['web'] });
      assert.equal((await f.response()).secrets[0]!.name, 'web');
      fresh.close();
      open.close();
    } finally {
      await server.stop();
    }
  });
});

describe('bind failures', () => {
  let busy: NetServer;
  let busyPort: number;
  before(async () => {
    busy = createNetServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    busyPort = (busy.address() as { port: number }).port;
  });
  after(() => busy.close());

  function listeners(grpcDoc: Record<string, unknown>): SdsListeners {
    const config = parseConfig({ grpc: grpcDoc }, dir);
    const logger = createLogger({ level: 'silent' });
    const metrics = new Metrics({ defaultMetrics: false });
    const store = new SecretStore({ logger, limits: { maxBytes: 1 << 20 } });
    return new SdsListeners(
      config,
      {
        store,
        authenticator: new PeerAuthenticator(),
        authorizer: new LocalPolicy([]),
        registry: new StreamRegistry(),
        metrics,
        logger,
        ...clientBounds(config.limits, logger),
      },
      logger,
    );
  }

  test('a port in use rejects with Node’s own error (EADDRINUSE)', async () => {
    await assert.rejects(listeners({ tcp: { address: `127.0.0.1:${busyPort}` } }).start(), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EADDRINUSE');
      return true;
    });
  });

  test('when a later listener fails, the earlier one is closed: nothing is left listening', async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const freePort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    writeFileSync(join(dir, 'not-a-dir'), '');
    await assert.rejects(
      listeners({ tcp: { address: `127.0.0.1:${freePort}` }, unix: { path: join(dir, 'not-a-dir', 'sds.sock') } }).start(),
      (err: NodeJS.ErrnoException) => typeof err.code === 'string',
    );
    const refused = await new Promise<string>((resolve) => {
      const c = netConnect(freePort, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        resolve('connected');
      });
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
  });
});

describe('garbage on the port', () => {
  test('HTTP/1.1, random bytes and a bad HTTP/2 preface close that connection only; the server keeps serving', async () => {
    const server = await startTestServer();
    try {
      server.put('web', tls(fx.web1));
      const [host, port] = [
        server.grpcAddress!.slice(0, server.grpcAddress!.lastIndexOf(':')),
        Number(server.grpcAddress!.split(':').pop()),
      ];
      const payloads = [
        Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
        Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
        Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(64, 0xff)]),
      ];
      for (const p of payloads) {
        await new Promise<void>((resolve) => {
          const c = netConnect(port, host, () => c.write(p));
          c.on('error', () => resolve());
          c.on('close', () => resolve());
          c.resume();
          setTimeout(() => c.destroy(), 5000).unref();
        });
      }
      const envoy = new FakeEnvoy(server.grpcAddress!);
      const s = envoy.sotw();
      s.request({ names: ['web'] });
      assert.equal((await s.response()).secrets[0]!.name, 'web');
      envoy.close();
    } finally {
      await server.stop();
    }
  });
});
