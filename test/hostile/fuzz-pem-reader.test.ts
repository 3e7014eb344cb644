// Fuzzing the PEM reader with 10,000 cases: bytes as they come from a file or a
// Kubernetes Secret go through pemText and parsePemBlocks. Either blocks come out, or a
// PkiError with PEM_INVALID/PEM_EMPTY; never another error, and a message never quotes
// the input (a block may hold a private key).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PkiError } from '../../src/pki/errors.js';
import { parsePemBlocks, pemText, toPem } from '../../src/pki/pem.js';

const RUNS = 10_000;

const label = fc.constantFrom('CERTIFICATE', 'PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY', 'X509 CRL');
const der = fc.uint8Array({ minLength: 1, maxLength: 400 });
const validPem = fc
  .array(fc.record({ label, der }), { minLength: 1, maxLength: 3 })
  .map((bs) => bs.map((b) => toPem(b.label, b.der)).join(''));

/** A valid PEM with a few bytes changed, inserted or cut, as bytes. */
const mutatedPem = fc
  .tuple(
    validPem,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'cut')), { minLength: 1, maxLength: 5 }),
  )
  .map(([pem, edits]) => {
    let b = Buffer.from(pem, 'utf8');
    for (const [at, v, op] of edits) {
      const i = at % (b.length + 1);
      if (op === 'set' && i < b.length) b[i] = v;
      else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]);
      else b = b.subarray(0, i);
    }
    return new Uint8Array(b);
  });
const randomBytes = fc.uint8Array({ maxLength: 600 });
const pemish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '-----BEGIN CERTIFICATE-----\n',
        '-----END CERTIFICATE-----\n',
        '-----BEGIN ',
        '-----',
        '\n',
        '\r\n',
        '=',
        'Proc-Type: 4,ENCRYPTED\n',
        '\uFEFF',
      ),
      fc.base64String({ maxLength: 80 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => new Uint8Array(Buffer.from(parts.join(''), 'utf8')));

test(`the PEM reader: ${RUNS} valid, mutated, PEM-like and random inputs parse or fail with PEM_INVALID/PEM_EMPTY`, () => {
  fc.assert(
    fc.property(
      fc.oneof(
        validPem.map((s) => new Uint8Array(Buffer.from(s))),
        mutatedPem,
        randomBytes,
        pemish,
      ),
      fc.boolean(),
      (bytes, allowText) => {
        try {
          const blocks = parsePemBlocks(pemText(bytes), { allowTextOutsideBlocks: allowText });
          assert.ok(blocks.length > 0);
          for (const b of blocks) assert.ok(b.der.length > 0);
        } catch (err) {
          assert.ok(err instanceof PkiError, `unexpected ${String(err)}`);
          assert.ok(err.code === 'PEM_INVALID' || err.code === 'PEM_EMPTY', err.code);
          // Never the content: no run of 12 base64 characters from a line that is not a
          // BEGIN/END line (labels may be named) appears in the message.
          const content = Buffer.from(bytes)
            .toString('latin1')
            .split(/\r?\n|\r/)
            .filter((l) => !l.includes('-----'))
            .join('\n');
          for (const run of content.match(/[A-Za-z0-9+/]{12,}/g) ?? []) assert.ok(!err.message.includes(run), 'message quotes the input');
        }
      },
    ),
    { numRuns: RUNS },
  );
});
