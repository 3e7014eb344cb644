// SecretStore tells watchers (the streams, which encode and write a push each) of a
// burst of changes over several turns of the event loop, so a CA rollover's 10,000
// pushes never hold the loop in one piece; each name is still told its newest state,
// in order. A slice of 0 ms and one name tells one name per turn, so nothing here
// depends on the machine's speed.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import type { StoredSecret } from '../../src/store/secret-material.js';
import { SecretStore } from '../../src/store/secret-store.js';
import { contentVersion } from '../../src/store/version.js';
import { makeFixtures, tls, until, type Fixtures } from '../support/test-server.js';

const origin = { source: 'test' as const, ref: 't' };

function quietLogger() {
  return createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
}

let fx: Fixtures;
before(() => {
  fx = makeFixtures();
});

describe('SecretStore watchers in slices', () => {
  test('a burst of 200 changes is told over many turns, and other callbacks run between them', async () => {
    const store = new SecretStore({ logger: quietLogger(), flushSlice: { ms: 0, minNames: 1 } });
    const names = Array.from({ length: 200 }, (_, i) => `n${i}`);
    const told: string[] = [];
    for (const n of names) store.watch(n, (name) => told.push(name));
    for (const [i, n] of names.entries()) store.put(n, tls(i % 2 ? fx.web1 : fx.web2), origin);
    assert.equal(told.length, 0, 'watchers are told after the current tick');

    // Queued behind the store's first slice: runs two turns later, mid-burst.
    let toldWhenOtherWorkRan = -1;
    setImmediate(() => setImmediate(() => (toldWhenOtherWorkRan = told.length)));
    await until(() => told.length === names.length, 5000, 'every watcher told');

    assert.ok(toldWhenOtherWorkRan > 0 && toldWhenOtherWorkRan < names.length, `other work ran mid-burst (after ${toldWhenOtherWorkRan})`);
    assert.deepEqual(told, names, 'each name told once, oldest change first');
  });

  test('a name changed again while it waits is told once, its newest state; one told already is told again after the rest', async () => {
    const store = new SecretStore({ logger: quietLogger(), flushSlice: { ms: 0, minNames: 1 } });
    const seen: Array<[string, string | undefined]> = [];
    for (const n of ['a', 'b', 'c']) store.watch(n, (name, s: StoredSecret | undefined) => seen.push([name, s?.version]));
    const v = (m: Parameters<typeof contentVersion>[0]) => contentVersion(m);
    store.put('a', tls(fx.web1), origin);
    store.put('b', tls(fx.web1), origin);
    store.put('c', tls(fx.web1), origin);
    store.put('a', tls(fx.web2), origin); // waits in a's place: a is told web2 only
    await new Promise((r) => setImmediate(r)); // queued behind the first slice
    assert.equal(seen.length, 1);
    store.put('a', tls(fx.other), origin); // a was told: it waits behind b and c
    store.delete('b', origin); // b still waits: told its deletion, not the web1 it never saw

    await until(() => seen.length === 4, 5000, 'every change told');
    assert.deepEqual(seen, [
      ['a', v(tls(fx.web2))],
      ['b', undefined],
      ['c', v(tls(fx.web1))],
      ['a', v(tls(fx.other))],
    ]);
    assert.equal(store.get('a')?.version, v(tls(fx.other)));
  });

  test('at least minNames are told per turn, however slow the machine', async () => {
    const store = new SecretStore({ logger: quietLogger(), flushSlice: { ms: 0, minNames: 3 } });
    const told: string[] = [];
    for (const n of ['w', 'x', 'y', 'z']) {
      store.watch(n, (name) => told.push(name));
      store.put(n, tls(fx.web1), origin);
    }
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(told, ['w', 'x', 'y']);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(told, ['w', 'x', 'y', 'z']);
  });

  test('with the default slice a small burst is told in one turn', async () => {
    const store = new SecretStore({ logger: quietLogger() });
    const told: string[] = [];
    for (const n of ['x', 'y', 'z']) {
      store.watch(n, (name) => told.push(name));
      store.put(n, tls(fx.web1), origin);
    }
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(told, ['x', 'y', 'z']);
  });
});
