// The `validation:` section: how many threads validate updates at the store's door.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { parseConfig } from '../../src/config/server-config.js';

const parse = (doc: Record<string, unknown>) => parseConfig(doc, '/etc/envoy-sds');

describe('validation config', () => {
  test('absent: the worker count is left to main.ts (cores - 1, from 1 to 4)', () => {
    assert.deepEqual(parse({}).validation, {});
  });

  test('workers: a count, or 0 for validation on the event loop', () => {
    assert.equal(parse({ validation: { workers: 3 } }).validation.workers, 3);
    assert.equal(parse({ validation: { workers: 0 } }).validation.workers, 0);
  });

  test('refuses what is not a small whole number, and unknown fields, naming the field', () => {
    for (const [doc, field] of [
      [{ validation: { workers: -1 } }, 'validation.workers'],
      [{ validation: { workers: 1.5 } }, 'validation.workers'],
      [{ validation: { workers: '2' } }, 'validation.workers'],
      [{ validation: { workers: 10_000 } }, 'validation.workers'],
      [{ validation: { threads: 2 } }, 'validation'],
      [{ validation: 2 }, 'validation'],
    ] as const) {
      assert.throws(
        () => parse(doc),
        (err: unknown) => err instanceof ConfigError && err.field.startsWith(field),
        JSON.stringify(doc),
      );
    }
  });
});

describe('default worker count', () => {
  test('cores - 1, never below 1 nor above the cap', async () => {
    const { availableParallelism } = await import('node:os');
    const { defaultValidationWorkers, MAX_DEFAULT_WORKERS } = await import('../../src/store/validation-pool.js');
    const n = defaultValidationWorkers();
    assert.equal(n, Math.max(1, Math.min(availableParallelism() - 1, MAX_DEFAULT_WORKERS)));
    assert.ok(n >= 1 && n <= MAX_DEFAULT_WORKERS);
  });
});
