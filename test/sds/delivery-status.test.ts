// Delivery status as operators read it: GET /delivery and `envoy-sds status`, per gateway
// node and secret: SYNCED, PENDING, STALE, NACKED (with Envoy's message), NOT_SENT.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { NodeDelivery } from '../../src/delivery/delivery-report.js';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { eventually, makeFixtures, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

const CLI = resolve('dist/src/cli.js');
const run = promisify(execFile);

let server: TestServer;
let fx: Fixtures;
const envoys: FakeEnvoy[] = [];

before(async () => {
  fx = makeFixtures();
  server = await startTestServer();
  server.put('web', tls(fx.web1));
});
after(async () => {
  for (const e of envoys) e.close();
  await server.stop();
});

function gateway(id: string): FakeEnvoy {
  const e = new FakeEnvoy(server.grpcAddress!, { node: { id, cluster: 'edge' } });
  envoys.push(e);
  return e;
}

async function delivery(query = ''): Promise<{ total: number; fleet: boolean; nodes: NodeDelivery[] }> {
  const res = await fetch(`http://${server.httpAddress}/delivery${query}`);
  assert.equal(res.status, 200);
  return (await res.json()) as { total: number; fleet: boolean; nodes: NodeDelivery[] };
}

function stateOf(nodes: NodeDelivery[], node: string, secret: string): string | undefined {
  return nodes.find((n) => n.node.id === node)?.secrets.find((s) => s.name === secret)?.state;
}

async function status(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, 'status', '--http', server.httpAddress!, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('delivery status', () => {
  test('SYNCED, NACKED with the message, NOT_SENT for a missing name, PENDING after a rotation', async () => {
    const a = gateway('gw-a').sotw();
    a.request({ names: ['web'] });
    a.ack(await a.response());
    const b = gateway('gw-b').sotw();
    b.request({ names: ['web'] });
    b.nack(await b.response(), 'Failed to load certificate chain: bad');
    const c = gateway('gw-c').sotw();
    c.request({ names: ['not-yet'] });

    await eventually(
      async () => {
        const d = await delivery();
        return (
          stateOf(d.nodes, 'gw-a', 'web') === 'SYNCED' &&
          stateOf(d.nodes, 'gw-b', 'web') === 'NACKED' &&
          stateOf(d.nodes, 'gw-c', 'not-yet') === 'NOT_SENT'
        );
      },
      5000,
      'SYNCED, NACKED, NOT_SENT',
    );
    const d = await delivery();
    assert.equal(d.fleet, false, 'without Kubernetes: this replica only');
    const nacked = d.nodes.find((n) => n.node.id === 'gw-b')!.secrets[0]!;
    assert.equal(nacked.nack?.message, 'Failed to load certificate chain: bad');
    assert.equal(d.nodes.find((n) => n.node.id === 'gw-c')!.secrets[0]!.reason, 'missing');

    // A rotation: gw-a holds the old version (STALE) until it ACKs the new one; gw-b
    // rejects the new one as well.
    server.put('web', tls(fx.web2));
    const r2 = await a.response();
    const rb2 = await b.response();
    await eventually(async () => stateOf((await delivery()).nodes, 'gw-a', 'web') === 'STALE', 5000, 'STALE');
    const stale = (await delivery()).nodes.find((n) => n.node.id === 'gw-a')!.secrets[0]!;
    assert.ok(stale.behindSince && Date.parse(stale.behindSince) <= Date.now(), 'STALE says since when');
    a.ack(r2);
    b.nack(rb2, 'Failed to load certificate chain: bad');
    await eventually(
      async () => {
        const nodes = (await delivery()).nodes;
        return stateOf(nodes, 'gw-a', 'web') === 'SYNCED' && stateOf(nodes, 'gw-b', 'web') === 'NACKED';
      },
      5000,
      'SYNCED and NACKED again',
    );
    // A gateway that has ACKed nothing yet is PENDING.
    const p = gateway('gw-d').sotw();
    p.request({ names: ['web'] });
    const rd = await p.response();
    await eventually(async () => stateOf((await delivery()).nodes, 'gw-d', 'web') === 'PENDING', 5000, 'PENDING');
    p.ack(rd);
    await eventually(async () => stateOf((await delivery()).nodes, 'gw-d', 'web') === 'SYNCED', 5000, 'gw-d SYNCED');
  });

  test('filters and pages', async () => {
    const one = await delivery('?node=gw-a');
    assert.deepEqual(
      one.nodes.map((n) => n.node.id),
      ['gw-a'],
    );
    const nacks = await delivery('?state=NACKED');
    assert.deepEqual(
      nacks.nodes.map((n) => n.node.id),
      ['gw-b'],
    );
    const page = await delivery('?node=gw-*&limit=1&offset=1');
    assert.equal(page.total, 4);
    assert.deepEqual(
      page.nodes.map((n) => n.node.id),
      ['gw-b'],
    );
    const bad = await fetch(`http://${server.httpAddress}/delivery?state=GREEN`);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /state: expected one of SYNCED/);
  });

  test('`envoy-sds status`: one row per gateway and secret; exit 1 while a subscription is NACKED', async () => {
    const all = await status();
    assert.equal(all.code, 1, all.stderr);
    assert.match(all.stdout, /^NODE +CLUSTER +SECRET +STATE +ACKED +DETAIL$/m);
    assert.match(all.stdout, /^gw-a +edge +web +SYNCED +\w{8}$/m);
    assert.match(all.stdout, /^gw-b +edge +web +NACKED +- +rejected \w{8}: "Failed to load certificate chain: bad"$/m);
    assert.match(all.stderr, /this replica's streams only/);
    assert.match(all.stdout, /^gw-c +edge +not-yet +NOT_SENT +- +no such secret \(yet\)$/m);

    const synced = await status('--node', 'gw-a');
    assert.equal(synced.code, 0);
    const json = await status('--secret', 'web', '-o', 'json');
    const rows = JSON.parse(json.stdout) as Array<{ node: { id: string }; state: string; name: string }>;
    assert.deepEqual(rows.map((r) => `${r.node.id}:${r.name}:${r.state}`).sort(), [
      'gw-a:web:SYNCED',
      'gw-b:web:NACKED',
      'gw-d:web:SYNCED',
    ]);
    const wide = await status('--node', 'gw-a', '-o', 'wide');
    assert.match(wide.stdout, /IDENTITY +REPLICA/);
    assert.match(wide.stdout, /loopback:loopback/);
  });

  test('`envoy-sds status` against no server: exit 3 with one line', async () => {
    const r = await run(process.execPath, [CLI, 'status', '--http', '127.0.0.1:9']).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 3);
    assert.match((r as { stderr: string }).stderr, /^envoy-sds status: cannot read 127\.0\.0\.1:9\/delivery/);
  });
});
