// The internal DER writer and reader (src/pki/der.ts, src/pki/certificate-fields.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readCertificateFields, nameToString } from '../../src/pki/certificate-fields.js';
import { children, oid, positiveInteger, readElement, readOid, smallInteger, tlv, time } from '../../src/pki/der.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('DER writer', () => {
  test('OIDs', () => {
    assert.equal(hex(oid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
    assert.equal(hex(oid('2.5.29.37.0')), '0604551d2500');
    assert.equal(hex(oid('2.999.3')), '0603883703');
  });

  test('OIDs round-trip through the reader', () => {
    const arcs = fc.tuple(fc.nat(2), fc.nat(39), fc.array(fc.bigInt({ min: 0n, max: 2n ** 70n }), { maxLength: 6 }));
    fc.assert(
      fc.property(arcs, ([a, b, rest]) => {
        const dotted = [a, b, ...rest].join('.');
        const der = oid(dotted);
        assert.equal(readOid(der.subarray(2)), dotted);
      }),
    );
  });

  test('integers are minimal and positive', () => {
    assert.equal(hex(positiveInteger(Buffer.from('0000ff', 'hex'))), '020200ff');
    assert.equal(hex(positiveInteger(Buffer.from('007f', 'hex'))), '02017f');
    assert.equal(hex(positiveInteger(Buffer.alloc(0))), '020100');
    assert.equal(hex(smallInteger(0)), '020100');
    assert.equal(hex(smallInteger(128)), '02020080');
    assert.equal(hex(smallInteger(256)), '02020100');
  });

  test('long-form lengths', () => {
    assert.equal(hex(tlv(0x04, Buffer.alloc(127))).slice(0, 4), '047f');
    assert.equal(hex(tlv(0x04, Buffer.alloc(300))).slice(0, 8), '0482012c');
    assert.equal(hex(tlv(0x04, Buffer.alloc(70000))).slice(0, 10), '0483011170');
  });

  test('times switch from UTCTime to GeneralizedTime in 2050', () => {
    assert.equal(time(new Date('2049-12-31T23:59:59Z')).toString('latin1', 2), '491231235959Z');
    assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1', 2), '20500101000000Z');
    assert.equal(time(new Date('1999-01-02T03:04:05.678Z')).toString('latin1', 2), '990102030405Z');
  });
});

describe('DER reader on arbitrary bytes', () => {
  test('readElement/children stay within bounds and throw only plain Errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const walk = (offset: number, limit: number, depth: number): void => {
          const el = readElement(bytes, offset, limit);
          assert.ok(el.contentStart <= el.end && el.end <= limit);
          if (depth < 8 && (el.tag & 0x20) !== 0) for (const c of children(bytes, el)) walk(c.start, el.end, depth + 1);
        };
        try {
          walk(0, bytes.length, 0);
        } catch (err) {
          assert.equal((err as Error).constructor, Error);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('readCertificateFields and nameToString throw only plain Errors', () => {
    const nested = fc.letrec<{ node: Uint8Array }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc
          .tuple(
            fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x06, 0x0c, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1c, 0x1e, 0x80, 0x87),
            fc.uint8Array({ maxLength: 12 }),
          )
          .map(([tag, b]) => tlv(tag, b)),
        fc.constantFrom(0x30, 0x31, 0xa0, 0xa3).chain((tag) => fc.array(tie('node'), { maxLength: 4 }).map((kids) => tlv(tag, kids))),
      ),
    })).node;
    fc.assert(
      fc.property(nested, (der) => {
        for (const fn of [() => readCertificateFields(der), () => nameToString(der)]) {
          try {
            fn();
          } catch (err) {
            assert.equal((err as Error).constructor, Error, String(err));
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
