// CRLs and OCSP staples at the store's door, with material openssl made: what Envoy would
// NACK (a CRL no CA of the bundle signed, a staple for another certificate, a failed
// OCSP answer) is refused with a stable code; the rest passes, with warnings when stale.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPkiError } from '../../src/pki/index.js';
import { validateMaterial } from '../../src/store/validate-material.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { makeCrl, makeOcspResponse } from '../support/openssl-revocation.js';

const ca = makeCa('Revocation CA');
const other = makeCa('Other CA');
const leaf = makeLeaf(ca, ['web.example']);
const sibling = makeLeaf(ca, ['sibling.example']);

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isPkiError(err) ? err.code : `not a PkiError: ${String(err)}`;
  }
};

test('a CRL signed by a CA of the bundle is accepted; one signed by another CA or garbage is CRL_INVALID', () => {
  const crl = makeCrl(ca, [sibling.certPem]);
  assert.doesNotThrow(() => validateMaterial({ kind: 'validation_context', trustedCa: ca.certPem, crl }, new Date()));
  assert.doesNotThrow(() => validateMaterial({ kind: 'validation_context', trustedCa: other.certPem + ca.certPem, crl }, new Date()));
  assert.equal(
    code(() => validateMaterial({ kind: 'validation_context', trustedCa: other.certPem, crl }, new Date())),
    'CRL_INVALID',
  );
  assert.equal(
    code(() => validateMaterial({ kind: 'validation_context', trustedCa: ca.certPem, crl: ca.certPem }, new Date())),
    'CRL_INVALID',
  );
  assert.equal(
    code(() => validateMaterial({ kind: 'validation_context', trustedCa: ca.certPem, crl: 'not pem' }, new Date())),
    'CRL_INVALID',
  );
  const tampered = crl.replace(/([A-Za-z0-9+/])(=*\n-----END)/, (_m, c: string, rest: string) => `${c === 'A' ? 'B' : 'A'}${rest}`);
  assert.equal(
    code(() => validateMaterial({ kind: 'validation_context', trustedCa: ca.certPem, crl: tampered }, new Date())),
    'CRL_INVALID',
  );
  // Past its nextUpdate (30 days): served, with a warning.
  const later = validateMaterial({ kind: 'validation_context', trustedCa: ca.certPem, crl }, new Date(Date.now() + 40 * 86_400_000));
  assert.ok(
    later.warnings.some((w) => w.includes('nextUpdate')),
    later.warnings.join('; '),
  );
});

test('an OCSP staple about the leaf is accepted; one about another certificate, or not an OCSP response, is OCSP_INVALID', () => {
  const staple = makeOcspResponse(ca, leaf);
  const tls = { kind: 'tls_certificate' as const, certificateChain: leaf.certPem, privateKey: leaf.keyPem };
  assert.deepEqual(validateMaterial({ ...tls, ocspStaple: staple }, new Date()).warnings, []);
  assert.equal(
    code(() => validateMaterial({ ...tls, ocspStaple: makeOcspResponse(ca, sibling) }, new Date())),
    'OCSP_INVALID',
  );
  assert.equal(
    code(() => validateMaterial({ ...tls, ocspStaple: Buffer.from('not der') }, new Date())),
    'OCSP_INVALID',
  );
  assert.equal(
    code(() => validateMaterial({ ...tls, ocspStaple: staple.subarray(0, staple.length - 3) }, new Date())),
    'OCSP_INVALID',
  );
  // "unauthorized" (6): a response without a body.
  assert.equal(
    code(() => validateMaterial({ ...tls, ocspStaple: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x06]) }, new Date())),
    'OCSP_INVALID',
  );
  const stale = validateMaterial({ ...tls, ocspStaple: staple }, new Date(Date.now() + 3 * 86_400_000));
  assert.ok(
    stale.warnings.some((w) => w.includes('OCSP staple expired')),
    stale.warnings.join('; '),
  );
});
