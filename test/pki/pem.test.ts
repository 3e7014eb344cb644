import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { PkiError, parsePemBlocks, toPem } from '../../src/pki/index.js';

const DER = Buffer.from('3003020101', 'hex');
const CERT = toPem('CERTIFICATE', DER);

function pemError(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe('toPem', () => {
  test('writes 64-character lines, LF endings and a trailing newline', () => {
    const pem = toPem('CERTIFICATE', Buffer.alloc(100, 7));
    const lines = pem.split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
    assert.equal(lines[1]?.length, 64);
    assert.equal(lines.at(-2), '-----END CERTIFICATE-----');
    assert.equal(lines.at(-1), '');
  });

  test('refuses empty DER and bad labels', () => {
    pemError(() => toPem('CERTIFICATE', Buffer.alloc(0)), 'INVALID_ARGUMENT');
    pemError(() => toPem('BAD--LABEL', DER), 'INVALID_ARGUMENT');
    pemError(() => toPem('', DER), 'INVALID_ARGUMENT');
  });
});

describe('parsePemBlocks accepts', () => {
  test('one block', () => {
    assert.deepEqual(parsePemBlocks(CERT), [{ label: 'CERTIFICATE', der: DER }]);
  });

  test('several blocks with blank lines, CRLF, trailing spaces and a BOM', () => {
    const text = `\uFEFF\n${CERT}\r\n\r\n${toPem('PRIVATE KEY', DER).replace(/\n/g, '  \r\n')}\n\n`;
    const blocks = parsePemBlocks(text);
    assert.deepEqual(
      blocks.map((b) => b.label),
      ['CERTIFICATE', 'PRIVATE KEY'],
    );
    assert.deepEqual(blocks[1]?.der, DER);
  });

  test('base64 lines of any length', () => {
    const b64 = Buffer.alloc(200, 1).toString('base64');
    const text = `-----BEGIN X-----\n${b64.slice(0, 10)}\n${b64.slice(10, 150)}\n${b64.slice(150)}\n-----END X-----`;
    assert.deepEqual(parsePemBlocks(text)[0]?.der, Buffer.alloc(200, 1));
  });

  test('explanatory text outside blocks only when allowed', () => {
    const text = `# Root CA from somewhere\n=====\n${CERT}trailing words\n`;
    pemError(() => parsePemBlocks(text), 'PEM_INVALID', /line 1: unexpected text outside a PEM block/);
    assert.equal(parsePemBlocks(text, { allowTextOutsideBlocks: true }).length, 1);
  });
});

describe('parsePemBlocks rejects', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['empty input', '', 'PEM_EMPTY', /input is empty/],
    ['whitespace only', ' \n\n', 'PEM_EMPTY', /input is empty/],
    ['text without blocks (strict)', 'hello', 'PEM_INVALID', /line 1: unexpected text/],
    ['garbage between blocks', `${CERT}garbage\n${CERT}`, 'PEM_INVALID', /line 4: unexpected text outside/],
    [
      'garbage inside a block',
      CERT.replace('MAMCAQE=', 'MAMC!QE='),
      'PEM_INVALID',
      /line 2: invalid base64 character inside PEM block 1 \('CERTIFICATE', line 1\)/,
    ],
    [
      'a BEGIN/END label mismatch',
      CERT.replace('END CERTIFICATE', 'END PRIVATE KEY'),
      'PEM_INVALID',
      /line 3: END label 'PRIVATE KEY' does not match/,
    ],
    ['a missing END line', CERT.split('\n').slice(0, 2).join('\n'), 'PEM_INVALID', /has no END line; the data may be truncated/],
    ['a BEGIN inside a block', `-----BEGIN CERTIFICATE-----\nMAMCAQE=\n${CERT}`, 'PEM_INVALID', /line 3: BEGIN line inside PEM block 1/],
    ['an END without BEGIN', '-----END CERTIFICATE-----\n', 'PEM_INVALID', /line 1: PEM END line without a matching BEGIN/],
    ['an empty block', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', 'PEM_INVALID', /has no content/],
    ['a blank line inside a block', '-----BEGIN X-----\nMAMC\n\nAQE=\n-----END X-----\n', 'PEM_INVALID', /line 3: blank line inside/],
    [
      'RFC 1421 headers',
      '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMAMCAQE=\n-----END RSA PRIVATE KEY-----\n',
      'PEM_INVALID',
      /header line .* not supported/,
    ],
    ['truncated base64', '-----BEGIN X-----\nMAMCAQ\n-----END X-----\n', 'PEM_INVALID', /not a multiple of 4/],
    ['data after padding', '-----BEGIN X-----\nMA==\nMAMC\n-----END X-----\n', 'PEM_INVALID', /data after padding/],
    ['non-canonical padding bits', '-----BEGIN X-----\nMB==\n-----END X-----\n', 'PEM_INVALID', /malformed base64/],
    ['a malformed BEGIN line', '-----BEGIN CERTIFICATE----\nMAMCAQE=\n', 'PEM_INVALID', /line 1: malformed PEM BEGIN line/],
    ['an indented BEGIN line', `  ${CERT}`, 'PEM_INVALID', /must start at the beginning of the line/],
    ['a label with a double dash', '-----BEGIN A--B-----\nMAMCAQE=\n-----END A--B-----\n', 'PEM_INVALID', /malformed PEM BEGIN line/],
  ];
  for (const [name, text, code, pattern] of cases) {
    test(name, () => pemError(() => parsePemBlocks(text), code, pattern));
  }

  test('never echoes an odd label', () => {
    const text = '-----BEGIN abcDEF123-----\nMAMCAQE=\n-----END xyz-----\n';
    pemError(() => parsePemBlocks(text), 'PEM_INVALID', /an unrecognized label/);
    assert.throws(
      () => parsePemBlocks(text),
      (err: Error) => !err.message.includes('abcDEF123'),
    );
  });
});

describe('parsePemBlocks properties', () => {
  const label = fc.stringMatching(/^[\x21-\x2C\x2E-\x7E](?:[- ]?[\x21-\x2C\x2E-\x7E]){0,20}$/);
  const der = fc.uint8Array({ minLength: 1, maxLength: 600 });

  test('toPem then parsePemBlocks is the identity, for any DER and label', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ label, der }), { minLength: 1, maxLength: 4 }), (blocks) => {
        const text = blocks.map((b) => toPem(b.label, b.der)).join('\n');
        const parsed = parsePemBlocks(text);
        assert.deepEqual(
          parsed.map((b) => ({ label: b.label, der: new Uint8Array(b.der) })),
          blocks.map((b) => ({ label: b.label, der: b.der })),
        );
      }),
      { numRuns: 300 },
    );
  });

  test('CRLF line endings parse the same', () => {
    fc.assert(
      fc.property(label, der, (l, d) => {
        const pem = toPem(l, d);
        assert.deepEqual(parsePemBlocks(pem.replace(/\n/g, '\r\n')), parsePemBlocks(pem));
      }),
    );
  });

  const pieces = fc.oneof(
    fc.constantFrom(
      '-----BEGIN CERTIFICATE-----',
      '-----END CERTIFICATE-----',
      '-----BEGIN PRIVATE KEY-----',
      '-----END PRIVATE KEY-----',
      '-----BEGIN ',
      '-----',
      '\n',
      '\r\n',
      '\r',
      ' ',
      '\t',
      '=',
      '==',
      ':',
      'Proc-Type: 4,ENCRYPTED',
      'MAMCAQE=',
      '\uFEFF',
    ),
    fc.base64String({ maxLength: 40 }),
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'binary', maxLength: 10 }),
  );
  const garbage = fc.array(pieces, { maxLength: 30 }).map((p) => p.join(''));

  test('random garbage either parses or throws PkiError, nothing else', () => {
    fc.assert(
      fc.property(garbage, fc.boolean(), (text, allowText) => {
        try {
          const blocks = parsePemBlocks(text, { allowTextOutsideBlocks: allowText });
          assert.ok(blocks.length > 0);
          for (const b of blocks) assert.ok(b.der.length > 0);
        } catch (err) {
          assert.ok(err instanceof PkiError, `unexpected ${String(err)}`);
          assert.ok(err.code === 'PEM_INVALID' || err.code === 'PEM_EMPTY', err.code);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('a single mutated character in a valid PEM is parsed identically or rejected with PkiError', () => {
    fc.assert(
      fc.property(label, der, fc.nat(), fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }), (l, d, at, ch) => {
        const pem = toPem(l, d);
        const i = at % pem.length;
        const mutated = pem.slice(0, i) + ch + pem.slice(i + 1);
        try {
          parsePemBlocks(mutated);
        } catch (err) {
          assert.ok(err instanceof PkiError, `unexpected ${String(err)}`);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
