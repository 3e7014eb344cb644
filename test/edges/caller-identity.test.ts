// Who is calling, tried as an attacker would: a URI SAN dressed as a DNS identity, ::1 and
// IPv4-mapped loopback, a sidecar's loopback in Kubernetes, and Unix socket modes that
// are not modes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { LocalPolicy } from '../../src/authz/local-policy.js';
import { parseConfig } from '../../src/config/server-config.js';
import fc from 'fast-check';
import { identityFromPeer, isLoopback } from '../../src/authz/peer-authenticator.js';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { makeCa, makeClientCert, makeLeaf, type Pair } from '../support/openssl-certs.js';
import { makeFixtures, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

let dir: string;
let fx: Fixtures;
let serverCa: Pair;
let clientCa: Pair;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sds-edges-id-'));
  fx = makeFixtures();
  serverCa = makeCa('SDS server CA');
  const serverCert = makeLeaf(serverCa, ['localhost']);
  clientCa = makeCa('Gateway client CA');
  writeFileSync(join(dir, 'server.crt'), serverCert.certPem);
  writeFileSync(join(dir, 'server.key'), serverCert.keyPem);
  writeFileSync(join(dir, 'client-ca.crt'), clientCa.certPem);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('URI SANs and DNS SANs are separate namespaces', () => {
  let server: TestServer;
  const envoyWith = (san: string) =>
    new FakeEnvoy(server.grpcAddress!.replace('127.0.0.1', 'localhost'), {
      credentials: grpc.credentials.createSsl(Buffer.from(serverCa.certPem), Buffer.from(cert(san).keyPem), Buffer.from(cert(san).certPem)),
    });
  const certs = new Map<string, Pair>();
  const cert = (san: string) => {
    if (!certs.has(san)) certs.set(san, makeClientCert(clientCa, san));
    return certs.get(san)!;
  };
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
          { identities: ['dns:edge.example.org'], names: ['web'] },
          { identities: ['spiffe://example.org/ns/gateway/sa/gw'], names: ['spiffe-only'] },
          { identities: ['uri:urn:example:odd'], names: ['odd'] },
        ],
      },
    });
    server.put('web', tls(fx.web1));
    server.put('spiffe-only', tls(fx.other));
    server.put('odd', tls(fx.web2));
  });
  after(() => server.stop());

  test('a client certificate whose URI SAN is "dns:edge.example.org" does not receive what dns:edge.example.org may read', async () => {
    const envoy = envoyWith('URI:dns:edge.example.org');
    try {
      await assert.rejects(envoy.fetch(['web']), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
    } finally {
      envoy.close();
    }
  });

  test('a DNS SAN still matches a dns: rule, and a SPIFFE URI SAN a spiffe:// rule (existing configs keep working)', async () => {
    const dns = envoyWith('DNS:edge.example.org');
    const spiffe = envoyWith('URI:spiffe://example.org/ns/gateway/sa/gw');
    try {
      assert.equal((await dns.fetch(['web'])).secrets[0]!.name, 'web');
      assert.equal((await spiffe.fetch(['spiffe-only'])).secrets[0]!.name, 'spiffe-only');
      await assert.rejects(spiffe.fetch(['web']), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
    } finally {
      dns.close();
      spiffe.close();
    }
  });

  test('a "uri:" rule names any URI SAN explicitly', async () => {
    const envoy = envoyWith('URI:urn:example:odd');
    try {
      assert.equal((await envoy.fetch(['odd'])).secrets[0]!.name, 'odd');
    } finally {
      envoy.close();
    }
  });

  test('a DNS SAN shaped like a SPIFFE ID never matches a URI rule', () => {
    const policy = new LocalPolicy([
      { identities: ['spiffe://*'], names: ['*'] },
      { identities: ['uri:*'], names: ['*'] },
    ]);
    const id = identityFromPeer({
      address: '10.0.0.1:1',
      listener: 'tls',
      clientCertificate: { uris: [], dnsNames: ['spiffe://example.org/x'], subject: '' },
    });
    assert.equal(policy.canRead(id, 'web'), false);
    const uri = identityFromPeer({
      address: '10.0.0.1:1',
      listener: 'tls',
      clientCertificate: { uris: ['dns:edge.example.org'], dnsNames: [], subject: '' },
    });
    assert.equal(new LocalPolicy([{ identities: ['dns:*'], names: ['*'] }]).canRead(uri, 'web'), false);
    assert.notEqual(uri.principals[0], 'dns:edge.example.org', 'logs and /status must not show it as a DNS identity either');
  });
});

describe('loopback', () => {
  test('::1 and ::ffff:127.0.0.0/104 peers are loopback; ::ffff:10.0.0.1 and ::2 are not', () => {
    for (const address of ['::1:40000', '[::1]:40000', '::ffff:127.0.0.1:40000', '::ffff:127.255.0.6:1', '127.0.0.6:15001']) {
      assert.equal(identityFromPeer({ address, listener: 'tcp' }).kind, 'loopback', address);
    }
    for (const address of ['::ffff:10.0.0.1:40000', '::2:40000', '10.0.0.1:1', '::ffff:128.0.0.1:1']) {
      assert.equal(identityFromPeer({ address, listener: 'tcp' }).kind, 'anonymous', address);
    }
  });

  test('property: every way a transport prints a 127/8 peer is loopback, and no other IPv4 peer is', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const port = fc.integer({ min: 1, max: 65535 });
    fc.assert(
      fc.property(octet, octet, octet, octet, port, (a, b, c, d, p) => {
        const v4 = `${a}.${b}.${c}.${d}`;
        const forms = [`${v4}:${p}`, `::ffff:${v4}:${p}`, `[::ffff:${v4}]:${p}`];
        for (const address of forms) assert.equal(isLoopback(address), a === 127, address);
      }),
    );
  });

  test('a real connection over ::1 is served as loopback', { skip: !hasIpv6Loopback() && process.env['CI'] !== 'true' }, async () => {
    const server = await startTestServer({
      grpc: { tcp: { address: '[::1]:0' } },
      authorization: { rules: [{ identities: ['loopback'], names: ['web'] }] },
    });
    try {
      server.put('web', tls(fx.web1));
      const envoy = new FakeEnvoy(server.grpcAddress!);
      try {
        assert.equal((await envoy.fetch(['web'])).secrets[0]!.name, 'web');
        assert.equal(
          server.logs.some((l) => l['msg'] === 'secret name denied to caller'),
          false,
        );
      } finally {
        envoy.close();
      }
    } finally {
      await server.stop();
    }
  });

  test('loopback trust is off by default in Kubernetes (KUBERNETES_SERVICE_HOST or a kubernetes: section), on with trustLoopback: true', () => {
    assert.equal(parseConfig({}, dir, {}).trustLoopback, true);
    assert.equal(parseConfig({}, dir, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }).trustLoopback, false);
    assert.equal(parseConfig({ kubernetes: {} }, dir, {}).trustLoopback, false);
    assert.equal(parseConfig({ trustLoopback: true }, dir, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }).trustLoopback, true);
    assert.equal(identityFromPeer({ address: '127.0.0.6:15006', listener: 'tcp' }, { trustLoopback: false }).kind, 'anonymous');
  });

  test('a sidecar-delivered peer (127.0.0.6) is anonymous when loopback trust is off', async () => {
    const server = await startTestServer({
      trustLoopback: false,
      authorization: { rules: [{ identities: ['loopback'], names: ['web'] }] },
    });
    try {
      server.put('web', tls(fx.web1));
      const envoy = new FakeEnvoy(server.grpcAddress!);
      try {
        await assert.rejects(envoy.fetch(['web']), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
      } finally {
        envoy.close();
      }
    } finally {
      await server.stop();
    }
  });
});

describe('Unix socket mode', () => {
  const mode = (m: unknown) => parseConfig({ grpc: { unix: { path: join(dir, 's.sock'), mode: m } } }, dir, {}).grpc.unix!.mode;

  test('"0600", "600", "0o600" and "0660" are modes', () => {
    assert.equal(mode('0600'), 0o600);
    assert.equal(mode('600'), 0o600);
    assert.equal(mode('0o600'), 0o600);
    assert.equal(mode('0660'), 0o660);
  });

  test('"0999" and "666 please" are refused at load, naming the field', () => {
    for (const bad of ['0999', '666 please', '06000', '', 'rw-------']) {
      assert.throws(
        () => mode(bad),
        (e: Error) => /grpc\.unix\.mode/.test(e.message) && /octal/.test(e.message),
        bad,
      );
    }
  });

  test('a world-writable mode is refused with a clear message', () => {
    for (const bad of ['0666', '0777', '0602']) {
      assert.throws(
        () => mode(bad),
        (e: Error) => /grpc\.unix\.mode/.test(e.message) && /world-writable/.test(e.message),
        bad,
      );
    }
  });

  test('a YAML number is refused (0600 unquoted is decimal 600 in YAML 1.2)', () => {
    assert.throws(
      () => mode(600),
      (e: Error) => /grpc\.unix\.mode/.test(e.message) && /quoted/.test(e.message),
    );
  });
});

function hasIpv6Loopback(): boolean {
  try {
    return /inet6 ::1\//.test(execFileSync('ip', ['-6', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}
