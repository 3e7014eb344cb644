import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ListItemSplitter } from '../../src/kubernetes/list-item-splitter.js';

/** Feeds `text` in chunks cut at the given points; returns the items and the envelope. */
function split(text: string, cuts: number[]): { items: unknown[]; envelope: Record<string, unknown> } {
  const bytes = Buffer.from(text, 'utf8');
  const items: unknown[] = [];
  const s = new ListItemSplitter((i) => items.push(i));
  let at = 0;
  for (const c of [...new Set(cuts.map((x) => x % (bytes.length + 1)))].sort((a, b) => a - b)) {
    s.write(bytes.subarray(at, c));
    at = c;
  }
  s.write(bytes.subarray(at));
  return { items, envelope: s.end() };
}

test('a list split at any byte boundaries gives every item and the envelope, as JSON.parse would', () => {
  const item = fc.record({
    metadata: fc.record({ name: fc.string(), resourceVersion: fc.string() }),
    data: fc.dictionary(fc.string(), fc.string({ unit: 'binary' })),
    items: fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null))),
  });
  fc.assert(
    fc.property(
      fc.array(item, { maxLength: 6 }),
      fc.string(),
      fc.array(fc.nat(), { maxLength: 20 }),
      fc.boolean(),
      (items, cont, cuts, pretty) => {
        const list = {
          kind: 'SecretList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '42', continue: cont, note: '"items":[' },
          items,
        };
        const text = JSON.stringify(list, null, pretty ? 2 : undefined);
        const out = split(text, cuts);
        assert.deepEqual(out.items, JSON.parse(JSON.stringify(items)));
        assert.deepEqual(out.envelope, { ...list, items: [] });
      },
    ),
    { numRuns: 300 },
  );
});

test('a list that ends early is an error, not a short list', () => {
  const s = new ListItemSplitter(() => {});
  s.write(Buffer.from('{"metadata":{},"items":[{"a":1},{"b":'));
  assert.throws(() => s.end());
});
