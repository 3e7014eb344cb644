// The RFC 2136 client against a real BIND: add, read back, delete, and every way it can
// go wrong that an operator will meet (wrong secret, unknown key, key not allowed, wrong
// zone, nobody listening, nobody answering).

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import { startBind, type BindServer } from '../harness/acme/bind.js';
import { freePort, NAMED, skipUnlessTools } from '../harness/acme/tools.js';
import { DnsUpdateError, updateTxt, type DnsUpdateErrorCode } from '../../src/issuance/solvers/rfc2136.js';
import fc from 'fast-check';
import { decodeMessage, encodeName, encodeTxtRdata, normalizeName, readName } from '../../src/issuance/solvers/dns-wire.js';

const skip = skipUnlessTools(NAMED);

async function rejectsWith(promise: Promise<unknown>, code: DnsUpdateErrorCode, secret?: string): Promise<DnsUpdateError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DnsUpdateError, `expected DnsUpdateError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (secret !== undefined) {
      assert.ok(!err.message.includes(secret), 'the message must not contain the TSIG secret');
      assert.ok(!String(err.stack).includes(secret), 'the stack must not contain the TSIG secret');
    }
    return err;
  }
  assert.fail(`expected ${code}, but the update succeeded`);
}

/** A TCP DNS proxy to BIND that rewrites each response with `rewrite`. */
async function tamperingProxy(t: TestContext, upstreamPort: number, rewrite: (response: Buffer) => Buffer): Promise<number> {
  const sockets: Socket[] = [];
  const proxy = createServer((client) => {
    sockets.push(client);
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.push(upstream);
    client.pipe(upstream);
    let buffered = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
      const rewritten = rewrite(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(rewritten.length, 0);
      client.end(Buffer.concat([prefix, rewritten]));
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    proxy.close();
  });
  const address = proxy.address();
  assert.ok(address && typeof address === 'object');
  return address.port;
}

describe('rfc2136 updateTxt against BIND', { skip }, () => {
  let bind: BindServer;
  before(async () => {
    bind = await startBind({ zone: 'example.test', extraAlgorithms: ['hmac-sha512', 'hmac-sha384', 'hmac-sha1'] });
  });
  after(() => bind?.stop());
  const server = () => ({ host: bind.host, port: bind.port });

  test('adds a TXT record that a resolver then sees, and deletes exactly that value', async () => {
    const name = '_acme-challenge.www.example.test';
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'add', name, value: 'first-token' });
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'add', name, value: 'second-token' });
    assert.deepEqual((await bind.queryTxt(name)).sort(), ['first-token', 'second-token']);

    await updateTxt(server(), bind.tsig, bind.zone, { action: 'delete', name, value: 'first-token' });
    assert.deepEqual(await bind.queryTxt(name), ['second-token']);

    await updateTxt(server(), bind.tsig, bind.zone, { action: 'delete', name, value: 'second-token' });
    assert.deepEqual(await bind.queryTxt(name), []);
  });

  test('adding twice and deleting an absent value are no-ops, so retries are safe', async () => {
    const name = '_acme-challenge.retry.example.test';
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'add', name, value: 'v' });
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'add', name, value: 'v' });
    assert.deepEqual(await bind.queryTxt(name), ['v']);
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'delete', name, value: 'v' });
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'delete', name, value: 'v' });
    assert.deepEqual(await bind.queryTxt(name), []);
  });

  test('works over UDP, with a trailing dot and mixed case names', async () => {
    const name = '_ACME-challenge.Udp.Example.Test.';
    await updateTxt(server(), bind.tsig, 'Example.Test.', { action: 'add', name, value: 'over-udp', ttl: 30 }, { transport: 'udp' });
    assert.deepEqual(await bind.queryTxt('_acme-challenge.udp.example.test'), ['over-udp']);
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'delete', name, value: 'over-udp' }, { transport: 'udp' });
    assert.deepEqual(await bind.queryTxt('_acme-challenge.udp.example.test'), []);
  });

  test('a value longer than 255 octets travels as several character-strings', async () => {
    const name = '_acme-challenge.long.example.test';
    const value = 'x'.repeat(300) + 'y'.repeat(300);
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'add', name, value });
    assert.deepEqual(await bind.queryTxt(name), [value]);
    await updateTxt(server(), bind.tsig, bind.zone, { action: 'delete', name, value });
    assert.deepEqual(await bind.queryTxt(name), []);
  });

  for (const algorithm of ['hmac-sha512', 'hmac-sha384', 'hmac-sha1']) {
    test(`signs and verifies with ${algorithm}`, async () => {
      const key = bind.keys[algorithm];
      assert.ok(key);
      const name = `_acme-challenge.${algorithm}.example.test`;
      await updateTxt(server(), key, bind.zone, { action: 'add', name, value: algorithm });
      assert.deepEqual(await bind.queryTxt(name), [algorithm]);
      await updateTxt(server(), key, bind.zone, { action: 'delete', name, value: algorithm });
    });
  }

  test('a wrong secret is DNS_TSIG_BADSIG (rcode NOTAUTH), without the secret in the error', async () => {
    const wrong = { ...bind.tsig, secret: Buffer.alloc(32, 7).toString('base64') };
    const err = await rejectsWith(
      updateTxt(server(), wrong, bind.zone, { action: 'add', name: '_acme-challenge.bad.example.test', value: 'v' }),
      'DNS_TSIG_BADSIG',
      wrong.secret,
    );
    assert.equal(err.rcode, 'NOTAUTH');
    assert.equal(err.tsigError, 'BADSIG');
    assert.match(err.message, /secret does not match/);
    assert.ok(!err.message.includes(bind.tsig.secret));
    assert.deepEqual(await bind.queryTxt('_acme-challenge.bad.example.test'), []);
  });

  test('an unknown key name is DNS_TSIG_BADKEY', async () => {
    const unknown = { ...bind.tsig, name: 'nobody-knows-me' };
    const err = await rejectsWith(
      updateTxt(server(), unknown, bind.zone, { action: 'add', name: '_acme-challenge.bad.example.test', value: 'v' }),
      'DNS_TSIG_BADKEY',
      unknown.secret,
    );
    assert.match(err.message, /nobody-knows-me/);
  });

  test('a key the zone does not allow is DNS_UPDATE_REFUSED', async () => {
    const err = await rejectsWith(
      updateTxt(server(), bind.readOnlyTsig, bind.zone, { action: 'add', name: '_acme-challenge.ro.example.test', value: 'v' }),
      'DNS_UPDATE_REFUSED',
      bind.readOnlyTsig.secret,
    );
    assert.match(err.message, /allow-update/);
  });

  test('a zone the server does not serve is DNS_UPDATE_NOTAUTH', async () => {
    await rejectsWith(
      updateTxt(server(), bind.tsig, 'other.test', { action: 'add', name: '_acme-challenge.other.test', value: 'v' }),
      'DNS_UPDATE_NOTAUTH',
      bind.tsig.secret,
    );
  });

  test('a response whose MAC was altered is DNS_TSIG_RESPONSE_BADSIG', async (t) => {
    const port = await tamperingProxy(t, bind.port, (response) => {
      const copy = Buffer.from(response);
      const macEnd = copy.length - 6; // original ID, error, other len (0) follow the MAC
      copy.writeUInt8(copy.readUInt8(macEnd - 1) ^ 0xff, macEnd - 1);
      return copy;
    });
    const err = await rejectsWith(
      updateTxt({ host: '127.0.0.1', port }, bind.tsig, bind.zone, {
        action: 'add',
        name: '_acme-challenge.tamper.example.test',
        value: 'v',
      }),
      'DNS_TSIG_RESPONSE_BADSIG',
      bind.tsig.secret,
    );
    assert.match(err.message, /does not match/);
  });

  test('a NOERROR response without TSIG is DNS_TSIG_RESPONSE_UNSIGNED', async (t) => {
    const port = await tamperingProxy(t, bind.port, (response) => {
      const last = decodeMessage(response).additional.at(-1);
      assert.ok(last);
      const copy = Buffer.from(response.subarray(0, last.offset));
      copy.writeUInt16BE(copy.readUInt16BE(10) - 1, 10);
      return copy;
    });
    await rejectsWith(
      updateTxt({ host: '127.0.0.1', port }, bind.tsig, bind.zone, {
        action: 'add',
        name: '_acme-challenge.tamper.example.test',
        value: 'v',
      }),
      'DNS_TSIG_RESPONSE_UNSIGNED',
      bind.tsig.secret,
    );
  });

  test('bad arguments are DNS_INVALID_REQUEST before anything is sent', async () => {
    const dead = { host: '127.0.0.1', port: 9 };
    await rejectsWith(
      updateTxt(dead, bind.tsig, 'example.test', { action: 'add', name: 'www.elsewhere.test', value: 'v' }),
      'DNS_INVALID_REQUEST',
    );
    await rejectsWith(
      updateTxt(dead, bind.tsig, 'example.test', { action: 'add', name: 'bad name.example.test', value: 'v' }),
      'DNS_INVALID_REQUEST',
    );
    await rejectsWith(
      updateTxt(dead, { ...bind.tsig, algorithm: 'hmac-md5' }, 'example.test', { action: 'add', name: 'a.example.test', value: 'v' }),
      'DNS_INVALID_REQUEST',
    );
    await rejectsWith(
      updateTxt(dead, { ...bind.tsig, secret: 'not base64!' }, 'example.test', { action: 'add', name: 'a.example.test', value: 'v' }),
      'DNS_INVALID_REQUEST',
    );
    await rejectsWith(
      updateTxt(dead, bind.tsig, 'example.test', { action: 'add', name: 'a.example.test', value: 'v', ttl: -1 }),
      'DNS_INVALID_REQUEST',
    );
  });
});

describe('rfc2136 updateTxt when the server is not there', () => {
  const tsig = { name: 'k', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 1).toString('base64') };
  const change = { action: 'add', name: '_acme-challenge.www.example.test', value: 'v' } as const;

  test('a closed TCP port fails at once with DNS_CONNECTION_FAILED', async () => {
    const port = await freePort();
    const err = await rejectsWith(
      updateTxt({ host: '127.0.0.1', port }, tsig, 'example.test', change, { timeoutMs: 2000 }),
      'DNS_CONNECTION_FAILED',
      tsig.secret,
    );
    assert.match(err.message, /ECONNREFUSED/);
  });

  test('a TCP server that never answers is DNS_TIMEOUT', async (t) => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    t.after(() => {
      sockets.forEach((s) => s.destroy());
      silent.close();
    });
    const address = silent.address();
    assert.ok(address && typeof address === 'object');
    const started = Date.now();
    const err = await rejectsWith(
      updateTxt({ host: '127.0.0.1', port: address.port }, tsig, 'example.test', change, { timeoutMs: 300 }),
      'DNS_TIMEOUT',
      tsig.secret,
    );
    assert.ok(Date.now() - started < 2000);
    assert.match(err.message, /within 300 ms/);
  });

  test('a UDP socket that never answers is DNS_TIMEOUT', async (t) => {
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    t.after(() => silent.close());
    await rejectsWith(
      updateTxt({ host: '127.0.0.1', port: silent.address().port }, tsig, 'example.test', change, { timeoutMs: 300, transport: 'udp' }),
      'DNS_TIMEOUT',
    );
  });

  test('a closed UDP port fails with DNS_CONNECTION_FAILED or DNS_TIMEOUT, never hangs', async () => {
    const port = await freePort({ udp: true });
    try {
      await updateTxt({ host: '127.0.0.1', port }, tsig, 'example.test', change, { timeoutMs: 500, transport: 'udp' });
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof DnsUpdateError);
      assert.ok(['DNS_CONNECTION_FAILED', 'DNS_TIMEOUT'].includes(err.code), err.code);
    }
  });
});

describe('DNS wire encoding', () => {
  const label = fc.stringMatching(/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/);
  const name = fc.array(label, { minLength: 1, maxLength: 3 }).map((labels) => labels.join('.'));

  test('a normalized name reads back from its wire form', () => {
    fc.assert(
      fc.property(name, (n) => {
        const wire = encodeName(normalizeName(n));
        assert.deepEqual(readName(wire, 0), { name: n, next: wire.length });
      }),
    );
  });

  test('TXT RDATA is character-strings of at most 255 octets that join to the value', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 1200 }), (value) => {
        const rdata = encodeTxtRdata(value);
        const chunks: Buffer[] = [];
        for (let offset = 0; offset < rdata.length;) {
          const len = rdata.readUInt8(offset);
          assert.ok(len <= 255);
          chunks.push(rdata.subarray(offset + 1, offset + 1 + len));
          offset += 1 + len;
        }
        assert.equal(Buffer.concat(chunks).toString('utf8'), value);
      }),
    );
  });

  test('a compression loop or a truncated message is DNS_MALFORMED_RESPONSE, not a hang', () => {
    const header = Buffer.from([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const loop = Buffer.concat([header, Buffer.from([0xc0, 12, 0, 6, 0, 1])]);
    assert.throws(
      () => decodeMessage(loop),
      (err: unknown) => err instanceof DnsUpdateError && err.code === 'DNS_MALFORMED_RESPONSE',
    );
    assert.throws(
      () => decodeMessage(header.subarray(0, 7)),
      (err: unknown) => err instanceof DnsUpdateError && err.code === 'DNS_MALFORMED_RESPONSE',
    );
  });
});
