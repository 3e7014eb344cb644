// The store's door parses each CA certificate once per content (src/pki/parsed-certificate-cache.ts).
// What a cached CA must never do: vouch for a leaf it did not sign, link to a parent it was
// not verified against, skip the checks that depend on the update (position, clock).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { PkiError, encodePrivateKeyPem, validateCaBundle, validateTlsCertificate } from '../../src/pki/index.js';
import { NOW, days, makeIntermediate, makeLeaf, makeRoot, type KeyPairCert } from './fixtures.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PkiError, String(err));
    return err.code;
  }
  return undefined;
}

describe('validation with CA certificates seen before', () => {
  let root: KeyPairCert;
  let inter: KeyPairCert;
  before(async () => {
    root = await makeRoot();
    inter = await makeIntermediate(root);
  });

  test('each leaf under a cached intermediate is still verified against it', async () => {
    const good = await makeLeaf(inter);
    const v = validateTlsCertificate({
      chainPem: good.cert.pem + inter.cert.pem + root.cert.pem,
      keyPem: encodePrivateKeyPem(good.key),
      now: NOW,
    });
    assert.deepEqual(v.warnings, []);
    // Same issuer name, another key: names link, the signature does not.
    const impostor = await makeIntermediate(root);
    const forged = await makeLeaf(impostor);
    assert.equal(
      code(() => validateTlsCertificate({ chainPem: forged.cert.pem + inter.cert.pem, keyPem: encodePrivateKeyPem(forged.key), now: NOW })),
      'CHAIN_SIGNATURE',
    );
  });

  test('a cached intermediate is not taken as linked to a parent it was never verified against', async () => {
    const leaf = await makeLeaf(inter);
    const keyPem = encodePrivateKeyPem(leaf.key);
    validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem + root.cert.pem, keyPem, now: NOW });
    const otherRoot = await makeRoot(undefined, 'Test Root CA'); // same name, other key
    assert.equal(
      code(() => validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem + otherRoot.cert.pem, keyPem, now: NOW })),
      'CHAIN_SIGNATURE',
    );
  });

  test('expiry of a cached CA follows the clock of each update', async () => {
    const leaf = await makeLeaf(inter);
    const input = { chainPem: leaf.cert.pem + inter.cert.pem, keyPem: encodePrivateKeyPem(leaf.key) };
    assert.deepEqual(validateTlsCertificate({ ...input, now: NOW }).warnings, []);
    const later = validateTlsCertificate({ ...input, now: days(400) }).warnings;
    assert.ok(
      later.some((w) => /certificate 2 .* expired/.test(w)),
      later.join('; '),
    );
  });

  test('a CA seen in a bundle keeps its label by position, and a leaf beside it is refused', async () => {
    const leaf = await makeLeaf(inter);
    validateCaBundle({ pem: root.cert.pem + inter.cert.pem, now: NOW });
    const again = validateCaBundle({ pem: inter.cert.pem + root.cert.pem + root.cert.pem, now: NOW });
    assert.deepEqual(again.warnings, ['certificate 3 is a duplicate of certificate 2']);
    assert.deepEqual(
      again.summaries.map((s) => s.subject),
      ['O=Envoy SDS Tests, CN=Test Intermediate CA', 'O=Envoy SDS Tests, CN=Test Root CA', 'O=Envoy SDS Tests, CN=Test Root CA'],
    );
    assert.equal(
      code(() => validateCaBundle({ pem: root.cert.pem + leaf.cert.pem, now: NOW })),
      'NOT_CA',
    );
  });

  test('a leaf is never taken from the cache: its key must match every time', async () => {
    const leaf = await makeLeaf(inter);
    const other = await makeLeaf(inter);
    validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem, keyPem: encodePrivateKeyPem(leaf.key), now: NOW });
    assert.equal(
      code(() => validateTlsCertificate({ chainPem: leaf.cert.pem + inter.cert.pem, keyPem: encodePrivateKeyPem(other.key), now: NOW })),
      'KEY_MISMATCH',
    );
  });
});
