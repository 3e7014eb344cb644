// The BIND harness itself: it starts fast, serves the zone with its wildcard and extra
// records, takes TSIG-signed updates from a standard tool (nsupdate) and from our client,
// and stops cleanly. dig and nsupdate are independent of our code, so they cross-check
// both the harness and the RFC 2136 client.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { queryTxt, startBind, type BindServer } from '../harness/acme/bind.js';
import { NAMED, requireTool, skipUnlessTools, type Tool } from '../harness/acme/tools.js';
import { updateTxt } from '../../src/issuance/solvers/rfc2136.js';

const run = promisify(execFile);
const DIG: Tool = { binary: 'dig', apt: 'bind9-dnsutils' };
const NSUPDATE: Tool = { binary: 'nsupdate', apt: 'bind9-dnsutils' };

async function dig(bind: BindServer, name: string, type: string): Promise<string[]> {
  const { stdout } = await run(requireTool(DIG), ['+short', '+time=2', '+tries=1', '-p', String(bind.port), '@127.0.0.1', name, type]);
  return stdout.split('\n').filter((line) => line !== '');
}

describe('BIND harness', { skip: skipUnlessTools(NAMED, DIG, NSUPDATE) }, () => {
  let bind: BindServer;
  let startupMs = 0;
  before(async () => {
    const started = Date.now();
    bind = await startBind({
      zone: 'example.test',
      records: [
        { name: 'fixed', type: 'A', value: '127.0.0.2' },
        { name: '_preset', type: 'TXT', value: 'hello world' },
      ],
    });
    startupMs = Date.now() - started;
  });
  after(() => bind?.stop());

  test('starts within a few seconds on a loopback port', (t) => {
    assert.equal(bind.host, '127.0.0.1');
    assert.ok(bind.port > 0);
    assert.ok(startupMs < 5000, `startup took ${startupMs} ms`);
    t.diagnostic(`named ready in ${startupMs} ms on port ${bind.port}`);
  });

  test('every name in the zone resolves to 127.0.0.1 through the wildcard', async () => {
    assert.deepEqual(await bind.queryA('example.test'), ['127.0.0.1']);
    assert.deepEqual(await bind.queryA('web.example.test'), ['127.0.0.1']);
    assert.deepEqual(await bind.queryA('any-test-name.example.test'), ['127.0.0.1']);
    assert.deepEqual(await dig(bind, 'web.example.test', 'A'), ['127.0.0.1']);
  });

  test('extra records from the options are served', async () => {
    assert.deepEqual(await bind.queryA('fixed.example.test'), ['127.0.0.2']);
    assert.deepEqual(await bind.queryTxt('_preset.example.test'), ['hello world']);
    assert.deepEqual(await queryTxt(bind.port, '_preset.example.test'), ['hello world']);
  });

  test('it does not recurse for names outside its zone', async () => {
    const { stdout } = await run(requireTool(DIG), ['+time=2', '+tries=1', '-p', String(bind.port), '@127.0.0.1', 'example.com', 'A']);
    assert.match(stdout, /status: REFUSED/);
  });

  test('nsupdate with the harness key adds a TXT that our resolver reads', async () => {
    const script = [
      `server 127.0.0.1 ${bind.port}`,
      `zone ${bind.zone}`,
      'update add _nsupdate.example.test 60 TXT "from-nsupdate"',
      'send',
      '',
    ].join('\n');
    const key = `${bind.tsig.algorithm}:${bind.tsig.name}:${bind.tsig.secret}`;
    const child = execFile(requireTool(NSUPDATE), ['-y', key]);
    child.stdin?.end(script);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, 'nsupdate failed');
    assert.deepEqual(await bind.queryTxt('_nsupdate.example.test'), ['from-nsupdate']);
  });

  test('our RFC 2136 client adds a TXT that dig reads, and deletes it', async () => {
    const server = { host: bind.host, port: bind.port };
    const name = '_acme-challenge.dig.example.test';
    await updateTxt(server, bind.tsig, bind.zone, { action: 'add', name, value: 'seen-by-dig' });
    assert.deepEqual(await dig(bind, name, 'TXT'), ['"seen-by-dig"']);
    await updateTxt(server, bind.tsig, bind.zone, { action: 'delete', name, value: 'seen-by-dig' });
    assert.deepEqual(await dig(bind, name, 'TXT'), []);
  });
});

describe('BIND harness lifecycle', { skip: skipUnlessTools(NAMED) }, () => {
  test('stop() ends named and frees the port; two servers run side by side', async () => {
    const a = await startBind({ zone: 'a.test' });
    const b = await startBind({ zone: 'b.test' });
    try {
      assert.notEqual(a.port, b.port);
      assert.deepEqual(await a.queryA('x.a.test'), ['127.0.0.1']);
      assert.deepEqual(await b.queryA('x.b.test'), ['127.0.0.1']);
    } finally {
      await a.stop();
    }
    await assert.rejects(a.queryA('x.a.test'));
    await b.stop();
    assert.match(a.output(), /exited/);
  });
});
