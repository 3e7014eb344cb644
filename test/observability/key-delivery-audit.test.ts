// The private-key audit trail: one line per first delivery, every line kept, in order,
// written together per turn rather than one write per line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuditLogger, KeyDeliveryAudit } from '../../src/observability/key-delivery-audit.js';
import { TurnBatchedDestination } from '../../src/observability/turn-batched-destination.js';

function recordingSink(): { writes: string[]; write(chunk: string): boolean } {
  const writes: string[] = [];
  return { writes, write: (chunk: string) => writes.push(chunk) > 0 };
}

test('the lines of one turn reach the destination in one write, in order, before the next turn', async () => {
  const sink = recordingSink();
  const batched = new TurnBatchedDestination(sink);
  for (let i = 0; i < 100; i++) batched.write(`line ${i}\n`);
  assert.equal(sink.writes.length, 0, 'nothing written while the turn runs');
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(sink.writes.length, 1);
  assert.deepEqual(
    sink.writes[0]!.split('\n').slice(0, -1),
    Array.from({ length: 100 }, (_, i) => `line ${i}`),
  );
});

test('a turn that logs more than a batch writes as it goes, and loses no line', async () => {
  const sink = recordingSink();
  const batched = new TurnBatchedDestination(sink, 1024);
  const line = `${'x'.repeat(90)}\n`;
  for (let i = 0; i < 100; i++) batched.write(line);
  assert.ok(sink.writes.length >= 8, `written during the turn: ${sink.writes.length} writes`);
  assert.ok(
    sink.writes.every((w) => w.length <= 1024 + line.length),
    'no write much larger than a batch',
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(sink.writes.join(''), line.repeat(100));
});

test('the audit writes each first delivery of a key version once, and no CA-only material', async () => {
  let out = '';
  const destination = new (await import('node:stream')).Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const audit = new KeyDeliveryAudit(createAuditLogger(destination));
  const key = { name: 'web', kind: 'tls_certificate', version: 'v1' };
  audit.delivered('spiffe://a', [key, { name: 'ca', kind: 'validation_context', version: 'c1' }]);
  audit.delivered('spiffe://a', [key]);
  audit.delivered('spiffe://b', [key]);
  await new Promise<void>((resolve) => setImmediate(resolve));
  const lines = out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.map((l) => [l['identity'], l['secret'], l['version'], l['log']]),
    [
      ['spiffe://a', 'web', 'v1', 'audit'],
      ['spiffe://b', 'web', 'v1', 'audit'],
    ],
  );
});

test('a rotation replaces what an identity is remembered to hold; past the bound the oldest identity is forgotten (a repeat, never a gap)', async () => {
  let out = '';
  const destination = new (await import('node:stream')).Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const audit = new KeyDeliveryAudit(createAuditLogger(destination), 2);
  const v = (name: string, version: string) => [{ name, kind: 'tls_certificate', version }];
  audit.delivered('a', v('web', '1'));
  audit.delivered('a', v('web', '2')); // rotation: written, still one pair
  audit.delivered('b', v('web', '2'));
  audit.delivered('a', v('web', '2')); // remembered: no line
  audit.delivered('c', v('web', '2')); // third pair: 'a' is forgotten
  audit.delivered('a', v('web', '2')); // written again
  await new Promise<void>((resolve) => setImmediate(resolve));
  const lines = out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.map((l) => `${String(l['identity'])}@${String(l['version'])}`),
    ['a@1', 'a@2', 'b@2', 'c@2', 'a@2'],
  );
});

test('to stdout: every line arrives, those logged in the turn that exits too', async () => {
  const { spawnSync } = await import('node:child_process');
  const module = new URL('../../src/observability/key-delivery-audit.js', import.meta.url).href;
  const script = `
    import { createAuditLogger, KeyDeliveryAudit } from ${JSON.stringify(module)};
    const audit = new KeyDeliveryAudit(createAuditLogger());
    for (let i = 0; i < 3000; i++) audit.delivered('id-' + i, [{ name: 'web', kind: 'tls_certificate', version: 'v1' }]);
    setImmediate(() => {
      audit.delivered('last', [{ name: 'web', kind: 'tls_certificate', version: 'v1' }]);
      process.exit(0);
    });`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(child.status, 0, child.stderr);
  const identities = child.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { identity: string }).identity);
  assert.equal(identities.length, 3001);
  assert.equal(identities[0], 'id-0');
  assert.equal(identities.at(-1), 'last');
});

test('stdout closed by its reader (EPIPE): logging goes on without a crash', async () => {
  const { spawn } = await import('node:child_process');
  const module = new URL('../../src/observability/key-delivery-audit.js', import.meta.url).href;
  const script = `
    import { createAuditLogger, KeyDeliveryAudit } from ${JSON.stringify(module)};
    const audit = new KeyDeliveryAudit(createAuditLogger());
    let i = 0;
    const t = setInterval(() => {
      for (let k = 0; k < 50; k++) audit.delivered('id-' + i++, [{ name: 'web', kind: 'tls_certificate', version: 'v1' }]);
      if (i >= 5000) { clearInterval(t); process.stderr.write('done'); }
    }, 1);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.once('data', () => child.stdout.destroy());
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, stderr);
  assert.equal(stderr, 'done');
});
