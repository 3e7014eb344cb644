import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  PkiError,
  describeKey,
  encodePrivateKeyPem,
  formatKeyDescription,
  generatePrivateKey,
  parsePrivateKeyPem,
  sameKeyPair,
  type KeySpec,
} from '../../src/pki/index.js';
import { Scratch, opensslOk } from './fixtures.js';

const scratch = new Scratch();
after(() => scratch.cleanup());

const SPECS: Array<[KeySpec, string, string, string]> = [
  // spec, description, PKCS1 label, PKCS8 label
  [{ algorithm: 'ECDSA' }, 'ECDSA P-256', 'EC PRIVATE KEY', 'PRIVATE KEY'],
  [{ algorithm: 'ECDSA', size: 384 }, 'ECDSA P-384', 'EC PRIVATE KEY', 'PRIVATE KEY'],
  [{ algorithm: 'RSA' }, 'RSA 2048', 'RSA PRIVATE KEY', 'PRIVATE KEY'],
  [{ algorithm: 'RSA', size: 3072 }, 'RSA 3072', 'RSA PRIVATE KEY', 'PRIVATE KEY'],
  [{ algorithm: 'Ed25519' }, 'Ed25519', 'PRIVATE KEY', 'PRIVATE KEY'],
];

describe('generate, encode, parse', () => {
  for (const [spec, description, pkcs1Label, pkcs8Label] of SPECS) {
    test(`${description}: PKCS1 and PKCS8 round-trip and openssl reads them`, async () => {
      const key = await generatePrivateKey(spec);
      assert.equal(formatKeyDescription(describeKey(key)), description);
      for (const [encoding, label] of [
        ['PKCS1', pkcs1Label],
        ['PKCS8', pkcs8Label],
      ] as const) {
        const pem = encodePrivateKeyPem(key, encoding);
        assert.ok(pem.startsWith(`-----BEGIN ${label}-----\n`), `${encoding}: ${pem.split('\n')[0]}`);
        assert.ok(pem.endsWith(`-----END ${label}-----\n`));
        const parsed = parsePrivateKeyPem(pem);
        assert.ok(sameKeyPair(parsed, key));
        assert.deepEqual(describeKey(parsed), describeKey(key));
        const path = scratch.write(`key-${description.replace(/\W/g, '')}-${encoding}.pem`, pem);
        opensslOk(['pkey', '-in', path, '-noout']);
      }
    });
  }

  test('PKCS1 is the default encoding, as in cert-manager', async () => {
    const key = await generatePrivateKey({ algorithm: 'RSA' });
    assert.match(encodePrivateKeyPem(key), /^-----BEGIN RSA PRIVATE KEY-----/);
  });

  test('unsupported specs are refused with UNSUPPORTED_KEY', async () => {
    for (const spec of [
      { algorithm: 'RSA', size: 1024 },
      { algorithm: 'ECDSA', size: 521 },
      { algorithm: 'DSA' },
    ] as unknown as KeySpec[]) {
      await assert.rejects(generatePrivateKey(spec), (err: unknown) => err instanceof PkiError && err.code === 'UNSUPPORTED_KEY');
    }
  });
});

describe('parsePrivateKeyPem with keys made by openssl', () => {
  test('SEC1 key preceded by an EC PARAMETERS block (openssl ecparam -genkey)', () => {
    const pem = opensslOk(['ecparam', '-name', 'prime256v1', '-genkey']);
    assert.match(pem, /BEGIN EC PARAMETERS/);
    assert.equal(formatKeyDescription(describeKey(parsePrivateKeyPem(pem))), 'ECDSA P-256');
  });

  test('PKCS8 RSA and Ed25519 (openssl genpkey)', () => {
    const rsa = opensslOk(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
    assert.equal(formatKeyDescription(describeKey(parsePrivateKeyPem(rsa))), 'RSA 2048');
    const ed = opensslOk(['genpkey', '-algorithm', 'ED25519']);
    assert.equal(formatKeyDescription(describeKey(parsePrivateKeyPem(Buffer.from(ed)))), 'Ed25519');
  });

  test('encrypted keys are refused', () => {
    const pkcs8 = opensslOk(['genpkey', '-algorithm', 'ED25519', '-aes-128-cbc', '-pass', 'pass:secret']);
    assert.throws(
      () => parsePrivateKeyPem(pkcs8),
      (err: PkiError) => err.code === 'UNSUPPORTED_KEY',
    );
    const legacy = opensslOk(['genrsa', '-traditional', '-aes128', '-passout', 'pass:secret', '2048']);
    assert.match(legacy, /Proc-Type/);
    assert.throws(
      () => parsePrivateKeyPem(legacy),
      (err: PkiError) => err.code === 'PEM_INVALID' && /header line/.test(err.message),
    );
  });

  test('unsupported key types (X25519, secp256k1) are refused', () => {
    const x = opensslOk(['genpkey', '-algorithm', 'X25519']);
    assert.throws(
      () => parsePrivateKeyPem(x),
      (err: PkiError) => err.code === 'UNSUPPORTED_KEY',
    );
    const k1 = opensslOk(['ecparam', '-name', 'secp256k1', '-genkey', '-noout']);
    assert.throws(
      () => parsePrivateKeyPem(k1),
      (err: PkiError) => err.code === 'UNSUPPORTED_KEY' && /secp256k1/.test(err.message),
    );
  });
});

describe('parsePrivateKeyPem rejections', () => {
  test('no key, a certificate, two keys, undecodable DER', async () => {
    const key = encodePrivateKeyPem(await generatePrivateKey({ algorithm: 'ECDSA' }), 'PKCS8');
    const cases: Array<[string, string]> = [
      ['', 'PEM_EMPTY'],
      ['-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n', 'KEY_INVALID'],
      [key + key, 'KEY_INVALID'],
      ['-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n', 'KEY_INVALID'],
      ['-----BEGIN RSA PRIVATE KEY-----\nMAMCAQE=\n-----END RSA PRIVATE KEY-----\n', 'KEY_INVALID'],
    ];
    for (const [pem, code] of cases) {
      assert.throws(
        () => parsePrivateKeyPem(pem),
        (err: unknown) => err instanceof PkiError && err.code === code,
        pem,
      );
    }
  });
});

describe('error messages never contain key material', () => {
  /** Every 12-character window of the base64 body: none may appear in a message. */
  function windows(pem: string): string[] {
    const body = pem
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('-----'))
      .join('');
    const out: string[] = [];
    for (let i = 0; i + 12 <= body.length; i += 1) out.push(body.slice(i, i + 12));
    return out;
  }

  function assertClean(err: unknown, pem: string): void {
    assert.ok(err instanceof PkiError, `unexpected ${String(err)}`);
    const text = `${err.message}\n${err.stack ?? ''}`;
    for (const w of windows(pem)) assert.ok(!text.includes(w), `message leaks key material: ${err.message}`);
    assert.equal(err.cause, undefined);
  }

  test('for random corruptions of RSA, EC and Ed25519 keys', async () => {
    const pems = await Promise.all(
      SPECS.slice(0, 3).flatMap(([spec]) => [
        generatePrivateKey(spec).then((k) => encodePrivateKeyPem(k, 'PKCS1')),
        generatePrivateKey(spec).then((k) => encodePrivateKeyPem(k, 'PKCS8')),
      ]),
    );
    pems.push(encodePrivateKeyPem(await generatePrivateKey({ algorithm: 'Ed25519' })));
    const mutation = fc.record({
      which: fc.nat({ max: pems.length - 1 }),
      at: fc.nat(),
      kind: fc.constantFrom('replace', 'insert', 'delete', 'truncate', 'flip'),
      ch: fc.constantFrom('!', ' ', ':', '=', 'A', '-', '\n', '\u00e9', '*'),
    });
    fc.assert(
      fc.property(mutation, ({ which, at, kind, ch }) => {
        const pem = pems[which] as string;
        const i = at % pem.length;
        let bad: string;
        switch (kind) {
          case 'replace':
            bad = pem.slice(0, i) + ch + pem.slice(i + 1);
            break;
          case 'insert':
            bad = pem.slice(0, i) + ch + pem.slice(i);
            break;
          case 'delete':
            bad = pem.slice(0, i) + pem.slice(i + 1);
            break;
          case 'truncate':
            bad = pem.slice(0, i);
            break;
          default: {
            // Flip a bit deep inside the DER: decodes as base64, fails in the key parser.
            const lines = pem.split('\n');
            const der = Buffer.from(lines.slice(1, -2).join(''), 'base64');
            const j = 4 + (at % (der.length - 4));
            der[j] = (der[j] ?? 0) ^ 0x55;
            const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
            bad = `${lines[0]}\n${b64}\n${lines.at(-2)}\n`;
          }
        }
        try {
          parsePrivateKeyPem(bad);
        } catch (err) {
          assertClean(err, pem);
        }
      }),
      { numRuns: 400 },
    );
  });

  test('garbage inside a key block and a missing END line are reported without the key', async () => {
    const pem = encodePrivateKeyPem(await generatePrivateKey({ algorithm: 'ECDSA' }), 'PKCS8');
    const mangled = pem.replace('PRIVATE KEY-----\n', 'PRIVATE KEY-----\ngarbage ');
    for (const input of [mangled, pem.replace(/-----END PRIVATE KEY-----\n/, '')]) {
      assert.throws(
        () => parsePrivateKeyPem(input),
        (err: unknown) => {
          assertClean(err, pem);
          return true;
        },
      );
    }
  });
});
