// SecretStore.offer(): validation off the event loop keeps the per-name order. The
// validator here is a fake whose validations the test completes in the order it
// chooses, so "older finishes after newer" is deterministic.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import type { MaterialValidator } from '../../src/store/material-validator.js';
import type { SecretMaterial, StoredSecret } from '../../src/store/secret-material.js';
import { VALIDATION_NICE } from '../../src/store/background-priority.js';
import { SecretStore, type PutResult } from '../../src/store/secret-store.js';
import { validateMaterial, type ValidatedMaterial } from '../../src/store/validate-material.js';
import { ValidationPool } from '../../src/store/validation-pool.js';
import { contentVersion } from '../../src/store/version.js';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { makeKey } from '../support/openssl-certs.js';
import { makeFixtures, startTestServer, tls, until, type Fixtures } from '../support/test-server.js';

const origin = { source: 'test' as const, ref: 't' };

/** Validations complete when the test says so (really validated, then held back). */
class HeldValidator implements MaterialValidator {
  readonly calls: Array<{ version: string; complete: () => void }> = [];
  constructor(readonly capacity = 8) {}

  validate(material: SecretMaterial, now: Date): Promise<ValidatedMaterial> {
    return new Promise((resolve, reject) => {
      this.calls.push({
        version: contentVersion(material),
        complete: () => {
          try {
            resolve(validateMaterial(material, now));
          } catch (err) {
            reject(err);
          }
        },
      });
    });
  }

  /** Completes the validation of `material`'s content. */
  complete(material: SecretMaterial): void {
    const v = contentVersion(material);
    const call = this.calls.find((c) => c.version === v);
    assert.ok(call, `no validation of ${v} was started`);
    call.complete();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function quietLogger() {
  return createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
}

/** Every state the watchers of `name` were told of, in order. */
function recordWatches(store: SecretStore, name: string): Array<string | undefined> {
  const seen: Array<string | undefined> = [];
  store.watch(name, (_n, s: StoredSecret | undefined) => seen.push(s?.version));
  return seen;
}

/** Lets promise callbacks and the store's setImmediate flush run. */
const settle = () => new Promise((r) => setImmediate(r));

let fx: Fixtures;
before(() => {
  fx = makeFixtures();
});

describe('SecretStore.offer', () => {
  test('an older version that finishes validation after a newer one is never served', async () => {
    const validator = new HeldValidator();
    const store = new SecretStore({ logger: quietLogger(), validator });
    const seen = recordWatches(store, 'web');
    const older = tls(fx.web1);
    const newer = tls(fx.web2);
    const pOlder = store.offer('web', older, origin);
    const pNewer = store.offer('web', newer, origin);
    await settle();
    assert.equal(validator.calls.length, 2, 'both are validating at once');

    validator.complete(newer);
    assert.equal((await pNewer).outcome, 'created');
    validator.complete(older);
    assert.equal((await pOlder).outcome, 'superseded');
    await settle();

    assert.equal(store.get('web')?.version, contentVersion(newer));
    assert.deepEqual(seen, [contentVersion(newer)], 'watchers (the streams) never saw the older version');
    assert.equal(store.pendingOffers, 0);
  });

  test('a put() or delete() after an offer wins over that offer finishing later', async () => {
    const validator = new HeldValidator();
    const store = new SecretStore({ logger: quietLogger(), validator });
    const late = store.offer('a', tls(fx.web1), origin);
    assert.equal(store.put('a', tls(fx.web2), origin).outcome, 'created');
    const gone = store.offer('b', tls(fx.web1), origin);
    store.put('b', tls(fx.other), origin);
    store.delete('b', origin);
    await settle();
    validator.complete(tls(fx.web1));
    assert.equal((await late).outcome, 'superseded');
    assert.equal((await gone).outcome, 'superseded');
    assert.equal(store.get('a')?.version, contentVersion(tls(fx.web2)));
    assert.equal(store.get('b'), undefined, 'a deleted secret is not brought back by an older offer');
  });

  test('an older version finishing first is served until the newer one is validated', async () => {
    const validator = new HeldValidator();
    const store = new SecretStore({ logger: quietLogger(), validator });
    const seen = recordWatches(store, 'web');
    const older = tls(fx.web1);
    const newer = tls(fx.web2);
    const pOlder = store.offer('web', older, origin);
    const pNewer = store.offer('web', newer, origin);
    await settle();
    validator.complete(older);
    assert.equal((await pOlder).outcome, 'created');
    await settle();
    validator.complete(newer);
    assert.equal((await pNewer).outcome, 'updated');
    await settle();
    assert.deepEqual(seen, [contentVersion(older), contentVersion(newer)]);
  });

  test('with the validator full, a waiting version replaced by a newer one is dropped unvalidated', async () => {
    const validator = new HeldValidator(1);
    const store = new SecretStore({ logger: quietLogger(), validator });
    const first = store.offer('x', tls(fx.web1), origin);
    const middle = store.offer('y', tls(fx.web2), origin);
    const last = store.offer('y', tls(fx.other), origin);
    assert.equal((await middle).outcome, 'superseded', 'replaced while waiting');
    assert.equal(store.pendingOffers, 2);
    validator.complete(tls(fx.web1));
    assert.equal((await first).outcome, 'created');
    await settle();
    validator.complete(tls(fx.other));
    assert.equal((await last).outcome, 'created');
    assert.deepEqual(
      validator.calls.map((c) => c.version),
      [contentVersion(tls(fx.web1)), contentVersion(tls(fx.other))],
      'the superseded version never reached the validator',
    );
  });

  test('offers of the same content share one validation', async () => {
    const validator = new HeldValidator();
    const store = new SecretStore({ logger: quietLogger(), validator });
    const all = ['a', 'b', 'c'].map((n) => store.offer(n, tls(fx.web1), origin));
    await settle();
    assert.equal(validator.calls.length, 1);
    validator.complete(tls(fx.web1));
    assert.deepEqual(
      (await Promise.all(all)).map((r) => r.outcome),
      ['created', 'created', 'created'],
    );
  });

  test('a rejected newer version leaves the older one, as put() in that order would', async () => {
    const validator = new HeldValidator();
    const store = new SecretStore({ logger: quietLogger(), validator });
    const good = tls(fx.web1);
    const bad: SecretMaterial = { kind: 'tls_certificate', certificateChain: fx.web1.certPem, privateKey: makeKey() };
    const pGood = store.offer('web', good, origin);
    const pBad = store.offer('web', bad, origin);
    await settle();
    validator.complete(bad);
    const r: PutResult = await pBad;
    assert.ok(r.outcome === 'rejected' && r.code === 'KEY_MISMATCH');
    validator.complete(good);
    assert.equal((await pGood).outcome, 'created');
    assert.equal(store.get('web')?.version, contentVersion(good));
  });
});

describe('ValidationPool (worker threads)', () => {
  let pool: ValidationPool;
  before(() => {
    pool = new ValidationPool({ workers: 2, logger: quietLogger(), batchSize: 4 });
  });
  after(() => pool.close());

  test('validates off the main thread with the same outcomes and codes as put()', async () => {
    const store = new SecretStore({ logger: quietLogger(), validator: pool });
    const wrongKey: SecretMaterial = { kind: 'tls_certificate', certificateChain: fx.web1.certPem, privateKey: makeKey() };
    const reversed: SecretMaterial = {
      kind: 'tls_certificate',
      certificateChain: fx.ca.certPem + fx.web1.certPem,
      privateKey: fx.ca.keyPem,
    };
    const notCa: SecretMaterial = { kind: 'validation_context', trustedCa: fx.web1.certPem };
    const results = await Promise.all([
      store.offer('good', tls(fx.web1, fx.ca), origin),
      store.offer('ca', { kind: 'validation_context', trustedCa: fx.ca.certPem }, origin),
      store.offer('k', wrongKey, origin),
      store.offer('r', reversed, origin),
      store.offer('n', notCa, origin),
    ]);
    assert.deepEqual(
      results.map((r) => (r.outcome === 'rejected' ? r.code : r.outcome)),
      ['created', 'created', 'KEY_MISMATCH', 'CHAIN_ORDER', 'NOT_CA'],
    );
    const good = store.get('good')!;
    assert.deepEqual(good.facts, validateMaterial(tls(fx.web1, fx.ca), new Date()).facts);
    assert.ok(good.facts.notAfter instanceof Date, 'dates survive the thread boundary');
  });

  test('validation threads run below the event loop: nice 10, the main thread unchanged (Linux)', async () => {
    const store = new SecretStore({ logger: quietLogger(), validator: pool });
    assert.equal((await store.offer('nice', tls(fx.web2, fx.ca), origin)).outcome, 'created');
    // /proc/self/task/<tid>/stat: field 19 is the thread's nice value (after "(comm)").
    const niceOf = (tid: string): number => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const tids = readdirSync('/proc/self/task');
    const base = niceOf(String(process.pid));
    assert.equal(VALIDATION_NICE, 10);
    if (base < VALIDATION_NICE) {
      const niced = tids.filter((t) => niceOf(t) === VALIDATION_NICE);
      assert.ok(niced.length >= 1 && niced.length <= 2, `threads at nice 10: ${niced.length} of ${tids.length}`);
    }
    // Never raised: a process started nicer than 10 keeps its value in every thread.
    assert.ok(tids.every((t) => niceOf(t) >= base));
    assert.equal(niceOf(String(process.pid)), base, 'the event loop keeps its priority');
  });

  test('many offers at once all settle (the pool dispatches as workers answer)', async () => {
    const store = new SecretStore({ logger: quietLogger(), validator: pool });
    const materials = [fx.web1, fx.web2, fx.other].map((p) => tls(p, fx.ca));
    const offers = Array.from({ length: 60 }, (_, i) => store.offer(`n${i}`, materials[i % 3]!, origin));
    const outcomes = await Promise.all(offers);
    assert.ok(outcomes.every((r) => r.outcome === 'created'));
    assert.equal(store.size, 60);
  });
});

describe('through the real server, as Envoy sees it', () => {
  test('a stream gets the newer version, never the older one that finished validating later', async () => {
    const validator = new HeldValidator();
    const server = await startTestServer({}, { validator });
    const envoy = new FakeEnvoy(server.grpcAddress!);
    try {
      server.put('web', tls(fx.web1));
      const s = envoy.sotw();
      s.request({ names: ['web'] });
      s.ack(await s.response());

      const older = tls(fx.web2);
      const newer = tls(fx.other);
      const pOlder = server.store.offer('web', older, origin);
      const pNewer = server.store.offer('web', newer, origin);
      await until(() => validator.calls.length === 2, 5000, 'both validations started');
      validator.complete(newer);
      assert.equal((await pNewer).outcome, 'updated');
      const pushed = await s.response();
      assert.equal(pushed.version_info, contentVersion(newer));
      s.ack(pushed);

      validator.complete(older);
      assert.equal((await pOlder).outcome, 'superseded');
      // The next thing on the stream is the next real change: nothing came in between.
      const later = tls(fx.web1, fx.ca);
      assert.equal(server.put('web', later).outcome, 'updated');
      assert.equal((await s.response()).version_info, contentVersion(later));
      assert.equal(server.store.get('web')?.version, contentVersion(later));
      s.cancel();
    } finally {
      envoy.close();
      await server.stop();
    }
  });
});

describe('ValidationPool between rollovers', () => {
  test('idle workers end, and start again on the next update', async () => {
    const pool = new ValidationPool({ workers: 1, logger: quietLogger(), idleMs: 50 });
    try {
      const store = new SecretStore({ logger: quietLogger(), validator: pool });
      assert.equal(pool.liveWorkers, 0, 'nothing starts before there is work');
      assert.equal((await store.offer('a', tls(fx.web1, fx.ca), origin)).outcome, 'created');
      await until(() => pool.liveWorkers === 0, 5000, 'the idle worker to end');
      assert.equal((await store.offer('b', tls(fx.web2, fx.ca), origin)).outcome, 'created');
      assert.equal(pool.liveWorkers, 1);
    } finally {
      await pool.close();
    }
  });
});

describe('ValidationPool when workers cannot run', () => {
  test('when workers cannot start it validates on the event loop, and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bad-worker-'));
    const script = join(dir, 'worker.mjs');
    writeFileSync(script, "throw new Error('cannot start');\n");
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: new Writable({
        write: (c: Buffer, _e, cb) => {
          lines.push(c.toString());
          cb();
        },
      }),
    });
    const pool = new ValidationPool({ workers: 1, logger, workerUrl: pathToFileURL(script) });
    try {
      const store = new SecretStore({ logger, validator: pool });
      const [ok, bad] = await Promise.all([
        store.offer('web', tls(fx.web1, fx.ca), origin),
        store.offer('k', { kind: 'tls_certificate', certificateChain: fx.web1.certPem, privateKey: makeKey() }, origin),
      ]);
      // The jobs sent to workers that died are validated on the event loop instead.
      assert.equal(ok.outcome, 'created');
      assert.ok(bad.outcome === 'rejected' && bad.code === 'KEY_MISMATCH');
      assert.equal((await store.offer('web2', tls(fx.web2, fx.ca), origin)).outcome, 'created');
      assert.ok(lines.some((l) => l.includes('validation workers cannot start; validating on the event loop from now on')));
    } finally {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an update that workers die on twice is refused (VALIDATOR_FAILED), and the pool goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dying-worker-'));
    const script = join(dir, 'worker.mjs');
    writeFileSync(
      script,
      "import { parentPort } from 'node:worker_threads';\n" +
        "parentPort.on('message', () => process.exit(1));\n" +
        'parentPort.postMessage({ ready: true });\n',
    );
    const pool = new ValidationPool({ workers: 1, logger: quietLogger(), workerUrl: pathToFileURL(script) });
    try {
      const store = new SecretStore({ logger: quietLogger(), validator: pool });
      const r = await store.offer('web', tls(fx.web1, fx.ca), origin);
      assert.ok(r.outcome === 'rejected' && r.code === 'VALIDATOR_FAILED', JSON.stringify(r));
      assert.equal(store.get('web'), undefined);
    } finally {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
