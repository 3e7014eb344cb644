// The certificate profile (src/pki/certificate-profile.ts) as the toolkit applies it:
// usages by key type, CA usages, subject upper bounds in characters, countries, URIs
// and email addresses, and multi-valued RDNs written as DER sorts them.

import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { children, readElement } from '../../src/pki/der.js';
import { PkiError, createCertificate, generatePrivateKey, summarizeCertificate, type KeyUsageName } from '../../src/pki/index.js';
import { NOW, Scratch, days, makeRoot, opensslOk, type KeyPairCert } from './fixtures.js';

const scratch = new Scratch();
after(() => scratch.cleanup());

const refused = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, pattern);
  return true;
};

describe('certificate profile', () => {
  let root: KeyPairCert;
  let rsa: KeyObject;
  let ec: KeyObject;
  let ed: KeyObject;
  before(async () => {
    root = await makeRoot({ algorithm: 'ECDSA', size: 256 });
    [rsa, ec, ed] = await Promise.all([
      generatePrivateKey({ algorithm: 'RSA', size: 2048 }),
      generatePrivateKey({ algorithm: 'ECDSA' }),
      generatePrivateKey({ algorithm: 'Ed25519' }),
    ]);
  });
  const leaf = (publicKey: KeyObject, extra: Record<string, unknown> = {}) =>
    createCertificate({ subject: { commonName: 'p' }, issuer: root.issuer, publicKey, notBefore: NOW, notAfter: days(1), ...extra });

  test('an RSA CA has cert sign and crl sign, and no key encipherment (RFC 3279 2.3.1)', async () => {
    const ca = await createCertificate({
      subject: { commonName: 'RSA CA' },
      issuer: 'self',
      privateKey: rsa,
      isCA: true,
      notBefore: NOW,
      notAfter: days(10),
    });
    assert.deepEqual(summarizeCertificate(ca.certificate).keyUsages, ['digital signature', 'cert sign', 'crl sign']);
    await assert.rejects(
      createCertificate({
        subject: { commonName: 'RSA CA' },
        issuer: 'self',
        privateKey: rsa,
        isCA: true,
        keyUsages: ['digital signature', 'key encipherment'],
        notBefore: NOW,
        notAfter: days(10),
      }),
      refused(/"key encipherment" is not allowed in an RSA CA certificate/),
    );
    const rsaLeaf = await leaf(rsa);
    assert.deepEqual(
      summarizeCertificate(rsaLeaf.certificate).keyUsages,
      ['digital signature', 'key encipherment'],
      'an RSA leaf keeps cert-manager defaults',
    );
  });

  test('ECDSA and Ed25519 keys refuse key and data encipherment; cert sign needs a CA', async () => {
    for (const u of ['key encipherment', 'data encipherment'] as KeyUsageName[]) {
      await assert.rejects(
        leaf(ec, { keyUsages: ['digital signature', u] }),
        refused(new RegExp(`"${u}" is not allowed with an ECDSA key .*RFC 5480 3 and RFC 8813 3`)),
      );
      await assert.rejects(
        leaf(ed, { keyUsages: ['digital signature', u] }),
        refused(new RegExp(`"${u}" is not allowed with an Ed25519 key .*RFC 8410`)),
      );
    }
    await assert.rejects(leaf(ed, { keyUsages: ['key agreement'] }), refused(/"key agreement" is not allowed with an Ed25519 key/));
    await assert.rejects(leaf(ec, { keyUsages: ['encipher only'] }), refused(/need "key agreement"/));
    await assert.rejects(leaf(ec, { keyUsages: ['digital signature', 'cert sign'] }), refused(/"cert sign" needs isCA: true/));
    const ecdh = await leaf(ec, { keyUsages: ['digital signature', 'key agreement'] });
    assert.deepEqual(summarizeCertificate(ecdh.certificate).keyUsages, ['digital signature', 'key agreement']);
  });

  test('subject attributes are bounded in characters: 64 emoji are a valid CN, O/OU/L/postalCode/serialNumber have bounds', async () => {
    const emoji = '🔐'.repeat(64); // 128 UTF-16 units, 64 characters
    const ok = await leaf(ec, { subject: { commonName: emoji } });
    assert.match(opensslOk(['x509', '-in', scratch.write('cn.pem', ok.pem), '-noout', '-subject', '-nameopt', 'utf8']), /(?:🔐){64}/u);
    await assert.rejects(leaf(ec, { subject: { commonName: `${emoji}x` } }), refused(/commonName .* is 65 characters; at most 64/));
    const over: Array<[string, unknown, number]> = [
      ['organizations', ['o'.repeat(65)], 64],
      ['organizationalUnits', ['u'.repeat(65)], 64],
      ['localities', ['l'.repeat(129)], 128],
      ['provinces', ['s'.repeat(129)], 128],
      ['streetAddresses', ['a'.repeat(129)], 128],
      ['postalCodes', ['1'.repeat(17)], 16],
      ['serialNumber', '9'.repeat(65), 64],
    ];
    for (const [field, value, max] of over) {
      await assert.rejects(
        leaf(ec, { subject: { commonName: 'p', [field]: value } }),
        refused(new RegExp(`subject ${field} .* at most ${max} are allowed`)),
        field,
      );
      const fits = Array.isArray(value) ? [String(value[0]).slice(1)] : String(value).slice(1);
      await leaf(ec, { subject: { commonName: 'p', [field]: fits } });
    }
  });

  test('countries are written upper-case and must be ISO 3166-1 alpha-2', async () => {
    const c = await leaf(ec, { subject: { commonName: 'p', countries: ['de'] } });
    assert.match(opensslOk(['x509', '-in', scratch.write('c.pem', c.pem), '-noout', '-subject']), /C = DE/);
    await assert.rejects(leaf(ec, { subject: { commonName: 'p', countries: ['XX'] } }), refused(/"XX" is not an ISO 3166-1 alpha-2 code/));
    await assert.rejects(leaf(ec, { subject: { commonName: 'p', countries: ['Germany'] } }), refused(/not an ISO 3166-1 alpha-2 code/));
  });

  test('URIs and email addresses: Unicode, spaces, relative URIs and hostless authorities are refused', async () => {
    for (const uri of ['spiffe://exämple.org/x', 'spiffe://example.org/a b', 'urn:a%zz', '/relative/path', 'file:///etc/x']) {
      await assert.rejects(leaf(ec, { uris: [uri] }), refused(/URI .* (ASCII|percent|absolute|host)/), uri);
    }
    for (const email of ['jürgen@example.org', 'a b@example.org', 'ops@exa mple.org', '<ops@example.org>', 'ops@']) {
      await assert.rejects(leaf(ec, { emailAddresses: [email] }), refused(/email address .* must be local@domain/), email);
    }
    const ok = await leaf(ec, {
      uris: ['spiffe://cluster.local/ns/a/sa/b', 'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66'],
      emailAddresses: ['ops+tls@example.org'],
    });
    assert.match(
      opensslOk(['x509', '-in', scratch.write('san.pem', ok.pem), '-noout', '-ext', 'subjectAltName']),
      /email:ops\+tls@example\.org, URI:spiffe:\/\/cluster\.local\/ns\/a\/sa\/b, URI:urn:uuid:/,
    );
  });

  test('a multi-valued RDN (CN=a+O=b) is a DER SET OF, sorted by encoding, whatever order it was written in', async () => {
    for (const dn of ['CN=zz-common+O=aa-org, C=DE', 'O=aa-org+CN=zz-common, C=DE']) {
      const cert = await leaf(ec, { subject: dn });
      const der = new Uint8Array(cert.certificate.subjectName.toArrayBuffer());
      const rdns = children(der, readElement(der, 0));
      const members = children(der, rdns[0]!).map((m) => Buffer.from(der.subarray(m.start, m.end)));
      assert.equal(members.length, 2);
      assert.ok(Buffer.compare(members[0]!, members[1]!) < 0, `${dn}: SET OF members in DER order`);
      // openssl prints the RDN; strict DER parsers (Python cryptography) read it.
      assert.match(
        opensslOk(['x509', '-in', scratch.write('rdn.pem', cert.pem), '-noout', '-subject']),
        /CN = zz-common \+ O = aa-org|O = aa-org \+ CN = zz-common/,
      );
    }
  });
});
