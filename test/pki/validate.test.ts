import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  PkiError,
  createCertificate,
  encodePrivateKeyPem,
  generatePrivateKey,
  validateCaBundle,
  validateTlsCertificate,
  type KeySpec,
} from '../../src/pki/index.js';
import { NOW, Scratch, days, makeIntermediate, makeLeaf, makeRoot, opensslOk, type KeyPairCert } from './fixtures.js';

const scratch = new Scratch();
after(() => scratch.cleanup());

function rejects(fn: () => unknown, code: string, pattern?: RegExp): PkiError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PkiError, `expected PkiError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

describe('validateTlsCertificate', () => {
  let root: KeyPairCert;
  let inter: KeyPairCert;
  let leaf: { key: import('node:crypto').KeyObject; cert: import('../../src/pki/index.js').IssuedCertificate };
  let keyPem: string;
  before(async () => {
    root = await makeRoot();
    inter = await makeIntermediate(root);
    leaf = await makeLeaf(inter);
    keyPem = encodePrivateKeyPem(leaf.key);
  });

  test('accepts leaf + intermediate, with or without the root, as text or bytes', () => {
    for (const chainPem of [
      leaf.cert.pem + inter.cert.pem,
      leaf.cert.pem + inter.cert.pem + root.cert.pem,
      Buffer.from(leaf.cert.pem + inter.cert.pem),
    ]) {
      const v = validateTlsCertificate({ chainPem, keyPem: Buffer.from(keyPem), now: NOW });
      assert.deepEqual(v.warnings, []);
      assert.equal(v.leaf.subject, 'CN=leaf.example.com');
      assert.deepEqual(v.leaf.dnsNames, ['leaf.example.com']);
      assert.deepEqual(v.chainDer[0], leaf.cert.der);
      assert.deepEqual(v.key, { algorithm: 'ECDSA', curve: 'P-256', size: 256 });
      // The @peculiar/x509 view is parsed on demand, and only once.
      assert.equal(v.chain[0]?.subject, 'CN=leaf.example.com');
      assert.equal(v.chain, v.chain);
      assert.equal(v.chain.length, v.chainDer.length);
    }
  });

  test('accepts a lone leaf and a self-signed certificate', async () => {
    validateTlsCertificate({ chainPem: leaf.cert.pem, keyPem, now: NOW });
    validateTlsCertificate({ chainPem: root.cert.pem, keyPem: encodePrivateKeyPem(root.key, 'PKCS8'), now: NOW });
  });

  for (const spec of [{ algorithm: 'RSA' }, { algorithm: 'ECDSA', size: 384 }, { algorithm: 'Ed25519' }] as KeySpec[]) {
    test(`accepts a ${spec.algorithm} leaf in PKCS1 and PKCS8`, async () => {
      const l = await makeLeaf(inter, spec);
      for (const encoding of ['PKCS1', 'PKCS8'] as const) {
        const v = validateTlsCertificate({ chainPem: l.cert.pem + inter.cert.pem, keyPem: encodePrivateKeyPem(l.key, encoding), now: NOW });
        assert.equal(v.key.algorithm, spec.algorithm);
      }
    });
  }

  test('rejects garbage in the chain and in the key, naming which', () => {
    rejects(() => validateTlsCertificate({ chainPem: 'garbage', keyPem, now: NOW }), 'PEM_INVALID', /^certificate chain: line 1:/);
    rejects(
      () => validateTlsCertificate({ chainPem: `${leaf.cert.pem}junk\n${inter.cert.pem}`, keyPem, now: NOW }),
      'PEM_INVALID',
      /^certificate chain: line \d+: unexpected text outside a PEM block/,
    );
    rejects(() => validateTlsCertificate({ chainPem: leaf.cert.pem, keyPem: 'garbage', now: NOW }), 'PEM_INVALID', /^private key: line 1/);
    rejects(() => validateTlsCertificate({ chainPem: '', keyPem, now: NOW }), 'PEM_EMPTY', /^certificate chain: input is empty/);
    rejects(() => validateTlsCertificate({ chainPem: leaf.cert.pem, keyPem: '\n', now: NOW }), 'PEM_EMPTY', /^private key:/);
    rejects(() => validateTlsCertificate({ chainPem: Buffer.from(leaf.cert.der), keyPem, now: NOW }), 'PEM_INVALID', /binary DER/);
    rejects(
      () => validateTlsCertificate({ chainPem: leaf.cert.pem + keyPem, keyPem, now: NOW }),
      'PEM_INVALID',
      /PEM block 2 is labelled 'EC PRIVATE KEY'/,
    );
  });

  test('rejects a key that does not match the leaf', async () => {
    const other = encodePrivateKeyPem(await generatePrivateKey({ algorithm: 'ECDSA' }));
    const err = rejects(
      () => validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem, keyPem: other, now: NOW }),
      'KEY_MISMATCH',
      /private key \(ECDSA P-256\) does not match the public key of certificate 1 \(CN=leaf\.example\.com\)/,
    );
    assert.ok(!err.message.includes(other.split('\n')[1] ?? '!'));
    // The intermediate's key with the leaf: also a mismatch.
    rejects(() => validateTlsCertificate({ chainPem: leaf.cert.pem, keyPem: encodePrivateKeyPem(inter.key), now: NOW }), 'KEY_MISMATCH');
  });

  test('rejects a reversed chain, saying so', () => {
    rejects(
      () =>
        validateTlsCertificate({
          chainPem: root.cert.pem + inter.cert.pem + leaf.cert.pem,
          keyPem: encodePrivateKeyPem(root.key),
          now: NOW,
        }),
      'CHAIN_ORDER',
      /certificate 1 \(O=Envoy SDS Tests, CN=Test Root CA\) is not issued by certificate 2 \(O=Envoy SDS Tests, CN=Test Intermediate CA\); the chain looks reversed/,
    );
  });

  test('rejects a leaf followed by an unrelated CA, naming the positions', async () => {
    const otherRoot = await makeRoot(undefined, 'Other Root');
    const otherInter = await makeIntermediate(otherRoot, undefined, 'Other Intermediate');
    rejects(
      () => validateTlsCertificate({ chainPem: leaf.cert.pem + otherInter.cert.pem, keyPem, now: NOW }),
      'CHAIN_ORDER',
      /certificate 1 \(CN=leaf\.example\.com\) names issuer 'O=Envoy SDS Tests, CN=Test Intermediate CA', but the next certificate, certificate 2 \(O=Envoy SDS Tests, CN=Other Intermediate\), is not it/,
    );
    rejects(
      () => validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem + otherRoot.cert.pem, keyPem, now: NOW }),
      'CHAIN_ORDER',
      /certificate 2 .* certificate 3/,
    );
  });

  test('rejects names that link but a signature that does not verify', async () => {
    // Same subject as the real intermediate, different key.
    const impostor = await makeIntermediate(root);
    rejects(
      () => validateTlsCertificate({ chainPem: leaf.cert.pem + impostor.cert.pem, keyPem, now: NOW }),
      'CHAIN_SIGNATURE',
      /the signature of certificate 1 \(CN=leaf\.example\.com\) does not verify with the public key of certificate 2/,
    );
  });

  test('rejects an issuer position held by a non-CA certificate', async () => {
    // openssl signs with a leaf as "CA", which createCertificate refuses to do.
    const victimKey = await generatePrivateKey({ algorithm: 'ECDSA' });
    const victimKeyPem = encodePrivateKeyPem(victimKey, 'PKCS8');
    const csr = opensslOk(['req', '-new', '-key', scratch.write('v.key', victimKeyPem), '-subj', '/CN=victim']);
    const issued = opensslOk([
      'x509',
      '-req',
      '-in',
      scratch.write('v.csr', csr),
      '-CA',
      scratch.write('leaf.pem', leaf.cert.pem),
      '-CAkey',
      scratch.write('leaf.key', keyPem),
      '-set_serial',
      '7',
      '-days',
      '3650',
    ]);
    rejects(
      () => validateTlsCertificate({ chainPem: issued + leaf.cert.pem, keyPem: victimKeyPem, now: NOW }),
      'NOT_CA',
      /certificate 2 \(CN=leaf\.example\.com\) issues certificate 1 \(CN=victim\) but is not a CA certificate/,
    );
  });

  test('rejects oversized input before parsing it', () => {
    rejects(
      () => validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem, keyPem, now: NOW, maxBytes: 1000 }),
      'TOO_LARGE',
      /are \d+ bytes; the limit is 1000/,
    );
    rejects(() => validateTlsCertificate({ chainPem: 'x'.repeat(2 * 1024 * 1024), keyPem, now: NOW }), 'TOO_LARGE');
  });

  test('rejects RSA keys below 2048 bits', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const cert = await createCertificate({
      subject: { commonName: 'weak' },
      issuer: inter.issuer,
      publicKey: privateKey,
      notBefore: NOW,
      notAfter: days(1),
    });
    rejects(
      () => validateTlsCertificate({ chainPem: cert.pem, keyPem: encodePrivateKeyPem(privateKey), now: NOW }),
      'UNSUPPORTED_KEY',
      /smaller than 2048 bits/,
    );
  });

  test('warns, but accepts, expired and not-yet-valid certificates', async () => {
    const expired = await makeLeaf(inter, undefined, { notBefore: days(-30), notAfter: days(-1) });
    const v = validateTlsCertificate({ chainPem: expired.cert.pem + inter.cert.pem, keyPem: encodePrivateKeyPem(expired.key), now: NOW });
    assert.equal(v.warnings.length, 1);
    assert.match(v.warnings[0] ?? '', /^certificate 1 \(CN=leaf\.example\.com\) expired at 2026-01-14T12:00:00\.000Z$/);
    const future = await makeLeaf(inter, undefined, { notBefore: days(1), notAfter: days(2) });
    const w = validateTlsCertificate({ chainPem: future.cert.pem, keyPem: encodePrivateKeyPem(future.key), now: NOW });
    assert.match(w.warnings[0] ?? '', /not yet valid/);
    // The intermediate expires too when `now` is far ahead.
    const late = validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem, keyPem, now: days(400) });
    assert.deepEqual(
      late.warnings.map((x) => x.split(' expired')[0]),
      ['certificate 1 (CN=leaf.example.com)', 'certificate 2 (O=Envoy SDS Tests, CN=Test Intermediate CA)'],
    );
  });

  test('a private key labelled CERTIFICATE is CERT_INVALID and not echoed', async () => {
    const pkcs8 = encodePrivateKeyPem(await generatePrivateKey({ algorithm: 'RSA' }), 'PKCS8');
    const disguised = pkcs8.replace(/PRIVATE KEY/g, 'CERTIFICATE');
    const err = rejects(() => validateTlsCertificate({ chainPem: disguised, keyPem, now: NOW }), 'CERT_INVALID', /certificate 1/);
    const body = pkcs8.split('\n')[5] ?? '';
    assert.ok(body.length > 40);
    for (let e: unknown = err; e instanceof Error; e = e.cause) {
      assert.ok(!e.message.includes(body.slice(0, 16)), e.message);
    }
  });

  test('random corruption of a good chain: accepted, or rejected with a PkiError, never a crash', () => {
    const der = [leaf.cert.der, inter.cert.der];
    const toPemText = (d: Buffer): string =>
      `-----BEGIN CERTIFICATE-----\n${d.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    fc.assert(
      fc.property(
        fc.nat({ max: 1 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.constantFrom('xor', 'truncate', 'insert'),
        (which, at, value, kind) => {
          const parts: Buffer[] = der.map((d) => Buffer.from(d));
          const target = parts[which] as Buffer;
          const i = at % target.length;
          if (kind === 'xor') target[i] = (target[i] ?? 0) ^ value;
          const mutated =
            kind === 'truncate'
              ? target.subarray(0, i)
              : kind === 'insert'
                ? Buffer.concat([target.subarray(0, i), Buffer.from([value]), target.subarray(i)])
                : target;
          parts[which] = mutated.length > 0 ? mutated : Buffer.from([0]);
          try {
            const v = validateTlsCertificate({ chainPem: parts.map(toPemText).join(''), keyPem, now: NOW });
            assert.ok(v.leaf.subject !== undefined);
          } catch (err) {
            assert.ok(err instanceof PkiError, `unexpected ${String(err)}`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  test('a corrupted certificate is CERT_INVALID with its position', () => {
    const der = Buffer.from(inter.cert.der);
    der[4] = 0x05; // break the TBSCertificate header
    const broken = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    rejects(() => validateTlsCertificate({ chainPem: leaf.cert.pem + broken, keyPem, now: NOW }), 'CERT_INVALID', /certificate 2/);
  });
});

describe('validateCaBundle', () => {
  let root: KeyPairCert;
  let inter: KeyPairCert;
  before(async () => {
    root = await makeRoot();
    inter = await makeIntermediate(root);
  });

  test('accepts CA certificates', () => {
    const v = validateCaBundle({ pem: root.cert.pem + inter.cert.pem, now: NOW });
    assert.deepEqual(
      v.summaries.map((s) => s.subject),
      ['O=Envoy SDS Tests, CN=Test Root CA', 'O=Envoy SDS Tests, CN=Test Intermediate CA'],
    );
    assert.equal(v.certificates.length, 2);
    assert.deepEqual(Buffer.from(v.certificates[1]?.rawData ?? new ArrayBuffer(0)), inter.cert.der);
    assert.deepEqual(v.warnings, []);
  });

  test('rejects a leaf, naming it', async () => {
    const leaf = await makeLeaf(inter);
    rejects(
      () => validateCaBundle({ pem: root.cert.pem + leaf.cert.pem, now: NOW }),
      'NOT_CA',
      /certificate 2 \(CN=leaf\.example\.com\) is not a CA certificate/,
    );
  });

  test('warns on an expired CA, and on a duplicate', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const old = await createCertificate({
      subject: { commonName: 'Old CA' },
      issuer: 'self',
      privateKey: key,
      isCA: true,
      notBefore: days(-400),
      notAfter: days(-35),
    });
    const v = validateCaBundle({ pem: old.pem + root.cert.pem + root.cert.pem, now: NOW });
    assert.equal(v.certificates.length, 3);
    assert.deepEqual(v.warnings, [
      'certificate 1 (CN=Old CA) expired at 2025-12-11T12:00:00.000Z',
      'certificate 3 is a duplicate of certificate 2',
    ]);
  });

  test('accepts a self-signed v1 root with a warning; refuses a v3 certificate without basicConstraints', () => {
    const key = scratch.write('v1.key', opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']));
    const csr = scratch.write('v1.csr', opensslOk(['req', '-new', '-key', key, '-subj', '/CN=Legacy Root']));
    const v1 = opensslOk(['x509', '-req', '-in', csr, '-signkey', key, '-days', '3650']);
    assert.match(opensslOk(['x509', '-in', scratch.write('v1.pem', v1), '-noout', '-text']), /Version: 1 \(0x0\)/);
    const now = new Date();
    const v = validateCaBundle({ pem: v1, now });
    assert.deepEqual(v.warnings, [
      'certificate 1 (CN=Legacy Root) is a version 1 certificate without extensions; accepted as a CA because it is self-signed',
    ]);
    const ext = scratch.write('ext.cnf', 'subjectKeyIdentifier=hash\n');
    const v3 = opensslOk(['x509', '-req', '-in', csr, '-signkey', key, '-days', '3650', '-extfile', ext]);
    rejects(() => validateCaBundle({ pem: v3, now }), 'NOT_CA', /basicConstraints cA is not set/);
  });

  test('explanatory text between certificates only when allowed', () => {
    const pem = `# Test Root\n${root.cert.pem}\n# Intermediate\n${inter.cert.pem}`;
    rejects(() => validateCaBundle({ pem, now: NOW }), 'PEM_INVALID', /^CA bundle: line 1: unexpected text/);
    assert.equal(validateCaBundle({ pem, now: NOW, allowTextOutsideBlocks: true }).certificates.length, 2);
  });

  test('rejects empty, garbage, oversized', () => {
    rejects(() => validateCaBundle({ pem: '', now: NOW }), 'PEM_EMPTY');
    rejects(() => validateCaBundle({ pem: `${root.cert.pem}\u0000`, now: NOW }), 'PEM_INVALID');
    rejects(
      () => validateCaBundle({ pem: root.cert.pem, now: NOW, maxBytes: 100 }),
      'TOO_LARGE',
      /CA bundle is \d+ bytes; the limit is 100/,
    );
  });
});
