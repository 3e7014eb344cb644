import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  PkiError,
  certificateFromPem,
  certificatesFromPem,
  checkIssuer,
  createCertificate,
  encodePrivateKeyPem,
  generatePrivateKey,
  issuerFromPem,
  splitUsages,
  summarizeCertificate,
  type KeySpec,
} from '../../src/pki/index.js';
import { NOW, Scratch, days, makeIntermediate, makeLeaf, makeRoot, openssl, opensslOk, type KeyPairCert } from './fixtures.js';

const scratch = new Scratch();
after(() => scratch.cleanup());

/** openssl verify at the fixed test clock. */
function verifyWithOpenssl(root: string, intermediates: string, leaf: string): { status: number; output: string } {
  const attime = String(Math.floor(NOW.getTime() / 1000));
  return openssl([
    'verify',
    '-attime',
    attime,
    '-CAfile',
    scratch.write('root.pem', root),
    '-untrusted',
    scratch.write('inter.pem', intermediates),
    scratch.write('leaf.pem', leaf),
  ]);
}

function x509Text(pem: string): string {
  return opensslOk(['x509', '-in', scratch.write('text.pem', pem), '-noout', '-text']);
}

function isPkiError(code: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof PkiError, `expected PkiError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

const LEAF_KEYS: Array<[KeySpec, string, string]> = [
  [{ algorithm: 'RSA', size: 2048 }, 'RSA 2048', 'Public-Key: (2048 bit)'],
  [{ algorithm: 'ECDSA', size: 256 }, 'ECDSA P-256', 'NIST CURVE: P-256'],
  [{ algorithm: 'ECDSA', size: 384 }, 'ECDSA P-384', 'NIST CURVE: P-384'],
  [{ algorithm: 'Ed25519' }, 'Ed25519', 'ED25519 Public-Key'],
];

describe('a CA hierarchy: P-384 root, P-256 intermediate, leaves of every key type', () => {
  let root: KeyPairCert;
  let inter: KeyPairCert;
  before(async () => {
    root = await makeRoot({ algorithm: 'ECDSA', size: 384 });
    inter = await makeIntermediate(root, { algorithm: 'ECDSA', size: 256 });
  });

  test('the root is a self-signed CA signed with ecdsa-with-SHA384', () => {
    const text = x509Text(root.cert.pem);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA384/);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign\n/);
    assert.match(text, /Issuer: O = Envoy SDS Tests, CN = Test Root CA/);
    assert.match(text, /Subject: O = Envoy SDS Tests, CN = Test Root CA/);
    const s = summarizeCertificate(root.cert.certificate);
    assert.equal(s.subjectKeyId, s.authorityKeyId);
    assert.equal(s.isCA, true);
    assert.equal(s.maxPathLength, undefined);
  });

  test('the intermediate has pathlen 0 and links to the root by key identifier', () => {
    const text = x509Text(inter.cert.pem);
    assert.match(text, /CA:TRUE, pathlen:0/);
    assert.equal(summarizeCertificate(inter.cert.certificate).authorityKeyId, summarizeCertificate(root.cert.certificate).subjectKeyId);
    assert.equal(verifyWithOpenssl(root.cert.pem, root.cert.pem, inter.cert.pem).status, 0);
  });

  for (const [spec, description, opensslKeyText] of LEAF_KEYS) {
    test(`${description} leaf: openssl verifies the chain and sees the extensions`, async () => {
      const key = await generatePrivateKey(spec);
      const leaf = await createCertificate({
        subject: { commonName: 'api.example.com', organizations: ['Example'], countries: ['DE'] },
        issuer: inter.issuer,
        publicKey: key,
        notBefore: days(-1),
        notAfter: days(30),
        dnsNames: ['api.example.com', '*.api.example.com'],
        ipAddresses: ['192.0.2.10', '2001:db8::10'],
        uris: ['spiffe://cluster.local/ns/default/sa/api'],
        emailAddresses: ['ops@example.com'],
        extKeyUsages: ['server auth', 'client auth'],
      });
      const res = verifyWithOpenssl(root.cert.pem, inter.cert.pem, leaf.pem);
      assert.equal(res.status, 0, res.output);
      assert.match(res.output, /leaf\.pem: OK/);

      const text = x509Text(leaf.pem);
      assert.ok(text.includes(opensslKeyText), text);
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
      assert.match(text, /Subject: C = DE, O = Example, CN = api\.example\.com/);
      assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
      const usages = description.startsWith('RSA') ? 'Digital Signature, Key Encipherment' : 'Digital Signature';
      assert.match(text, new RegExp(`X509v3 Key Usage: critical\\n\\s+${usages}\\n`));
      assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
      assert.match(text, /X509v3 Subject Alternative Name: \n/); // not critical: the subject is set
      for (const name of [
        'DNS:api.example.com',
        'DNS:*.api.example.com',
        'IP Address:192.0.2.10',
        'IP Address:2001:DB8:0:0:0:0:0:10',
        'URI:spiffe://cluster.local/ns/default/sa/api',
        'email:ops@example.com',
      ]) {
        assert.ok(text.includes(name), `missing ${name}`);
      }

      const s = summarizeCertificate(leaf.certificate);
      assert.deepEqual(s.dnsNames, ['api.example.com', '*.api.example.com']);
      assert.deepEqual(s.ipAddresses, ['192.0.2.10', '2001:db8::10']);
      assert.deepEqual(s.uris, ['spiffe://cluster.local/ns/default/sa/api']);
      assert.deepEqual(s.emailAddresses, ['ops@example.com']);
      assert.deepEqual(s.extKeyUsages, ['server auth', 'client auth']);
      assert.equal(s.keyAlgorithm, description);
      assert.equal(s.signatureAlgorithm, 'ECDSA with SHA-256');
      assert.equal(s.isCA, false);
      assert.equal(s.subject, 'C=DE, O=Example, CN=api.example.com');
      assert.equal(s.issuer, 'O=Envoy SDS Tests, CN=Test Intermediate CA');
      assert.equal(s.notAfter.getTime(), days(30).getTime());
      assert.equal(s.authorityKeyId, summarizeCertificate(inter.cert.certificate).subjectKeyId);
    });
  }

  test('the PEM parses back to the same certificate', async () => {
    const { cert } = await makeLeaf(inter);
    const back = certificateFromPem(cert.pem);
    assert.deepEqual(Buffer.from(back.rawData), cert.der);
    assert.equal(back.subject, 'CN=leaf.example.com');
  });
});

describe('other signing keys: RSA root, Ed25519 intermediate', () => {
  test('signature algorithms follow the signing key and openssl verifies', async () => {
    const root = await makeRoot({ algorithm: 'RSA', size: 2048 }, 'RSA Root');
    const inter = await makeIntermediate(root, { algorithm: 'Ed25519' }, 'Ed25519 Intermediate');
    const leaf = await makeLeaf(inter, { algorithm: 'ECDSA', size: 384 });
    assert.match(x509Text(root.cert.pem), /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(x509Text(inter.cert.pem), /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(x509Text(leaf.cert.pem), /Signature Algorithm: ED25519/);
    const res = verifyWithOpenssl(root.cert.pem, inter.cert.pem, leaf.cert.pem);
    assert.equal(res.status, 0, res.output);
    assert.equal(summarizeCertificate(leaf.cert.certificate).signatureAlgorithm, 'Ed25519');
  });

  test('a P-384 intermediate signs with ecdsa-with-SHA384', async () => {
    const root = await makeRoot({ algorithm: 'ECDSA', size: 256 });
    const inter = await makeIntermediate(root, { algorithm: 'ECDSA', size: 384 });
    const leaf = await makeLeaf(inter);
    assert.match(x509Text(leaf.cert.pem), /Signature Algorithm: ecdsa-with-SHA384/);
    assert.equal(verifyWithOpenssl(root.cert.pem, inter.cert.pem, leaf.cert.pem).status, 0);
  });
});

describe('createCertificate details', () => {
  let root: KeyPairCert;
  before(async () => {
    root = await makeRoot({ algorithm: 'ECDSA', size: 256 });
  });

  test('default serial numbers are positive, 16 octets, and distinct', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const { cert } = await makeLeaf(root);
      const serial = summarizeCertificate(cert.certificate).serialNumber;
      assert.match(serial, /^[0-7][0-9A-F]{31}$/);
      serials.add(serial);
    }
    assert.equal(serials.size, 50);
  });

  test('explicit serial numbers, as hex or bigint, are encoded minimally and positive', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const base = { subject: { commonName: 's' }, issuer: root.issuer, publicKey: key, notBefore: NOW, notAfter: days(1) };
    const hex = await createCertificate({ ...base, serialNumber: '00ff01' });
    assert.equal(summarizeCertificate(hex.certificate).serialNumber, 'FF01');
    assert.match(x509Text(hex.pem), /Serial Number: 65281 \(0xff01\)/);
    const big = await createCertificate({ ...base, serialNumber: 2n ** 150n });
    assert.equal(BigInt(`0x${summarizeCertificate(big.certificate).serialNumber}`), 2n ** 150n);
    for (const serialNumber of ['0', 'xyz', 'ff'.repeat(21), -5n]) {
      await assert.rejects(createCertificate({ ...base, serialNumber }), isPkiError('INVALID_ARGUMENT'));
    }
  });

  test('times: UTCTime before 2050, GeneralizedTime after, second precision', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const cert = await createCertificate({
      subject: { commonName: 'long' },
      issuer: root.issuer,
      publicKey: key,
      notBefore: new Date('2049-12-31T23:59:59.999Z'),
      notAfter: new Date('2051-06-01T00:00:00Z'),
    });
    const text = x509Text(cert.pem);
    assert.match(text, /Not Before: Dec 31 23:59:59 2049 GMT/);
    assert.match(text, /Not After : Jun {2}1 00:00:00 2051 GMT/);
    const der = cert.der.toString('hex');
    assert.ok(der.includes(Buffer.from('491231235959Z').toString('hex')), 'UTCTime');
    assert.ok(der.includes(Buffer.from('20510601000000Z').toString('hex')), 'GeneralizedTime');
  });

  test('subjects: DN strings, UTF-8 values, an encoded Name', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const base = { issuer: root.issuer, publicKey: key, notBefore: NOW, notAfter: days(1) };
    const fromString = await createCertificate({ ...base, subject: 'CN=svc, OU=Platform, O=Example Org, C=US' });
    assert.equal(fromString.certificate.subject, 'CN=svc, OU=Platform, O=Example Org, C=US');
    assert.match(x509Text(fromString.pem), /Subject: CN = svc, OU = Platform, O = Example Org, C = US/);
    const utf8 = await createCertificate({ ...base, subject: { commonName: 'Zürich Ω', localities: ['Zürich'] } });
    assert.equal(utf8.certificate.subject, 'L=Zürich, CN=Zürich Ω');
    const copied = await createCertificate({ ...base, subject: { der: new Uint8Array(utf8.certificate.subjectName.toArrayBuffer()) } });
    assert.equal(copied.certificate.subject, utf8.certificate.subject);
  });

  test('a subject-less certificate gets a critical subjectAltName', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const cert = await createCertificate({
      issuer: root.issuer,
      publicKey: key,
      notBefore: NOW,
      notAfter: days(1),
      uris: ['spiffe://td/x'],
    });
    assert.match(x509Text(cert.pem), /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/td\/x/);
  });

  test('usages: explicit key usages, cert-manager usage lists, CA gets cert sign', async () => {
    const key = await generatePrivateKey({ algorithm: 'RSA' });
    const { keyUsages, extKeyUsages } = splitUsages(['signing', 'key encipherment', 'server auth', 'client auth']);
    const cert = await createCertificate({
      subject: { commonName: 'u' },
      issuer: root.issuer,
      publicKey: key,
      notBefore: NOW,
      notAfter: days(1),
      keyUsages,
      extKeyUsages,
    });
    const s = summarizeCertificate(cert.certificate);
    assert.deepEqual(s.keyUsages, ['digital signature', 'key encipherment']);
    assert.deepEqual(s.extKeyUsages, ['server auth', 'client auth']);
    const ca = await createCertificate({
      subject: { commonName: 'ca' },
      issuer: root.issuer,
      publicKey: key,
      notBefore: NOW,
      notAfter: days(1),
      isCA: true,
      keyUsages: ['crl sign'],
    });
    assert.deepEqual(summarizeCertificate(ca.certificate).keyUsages, ['cert sign', 'crl sign']);
    assert.throws(() => splitUsages(['server auth', 'fly']), isPkiError('INVALID_ARGUMENT'));
  });

  test('invalid parameters are refused with INVALID_ARGUMENT', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const base = { subject: { commonName: 'x' }, issuer: root.issuer, publicKey: key, notBefore: NOW, notAfter: days(1) };
    const bad: Array<Record<string, unknown>> = [
      { notBefore: days(2) },
      { notAfter: new Date(Number.NaN) },
      { ipAddresses: ['300.1.1.1'] },
      { ipAddresses: ['fe80::1%eth0'] },
      { dnsNames: ['has space.example.com'] },
      { uris: ['not a uri'] },
      { emailAddresses: ['nobody'] },
      { maxPathLength: 1 },
      { isCA: true, maxPathLength: -1 },
      { keyUsages: ['fly'] },
      { extKeyUsages: ['fly'] },
      { subject: {} },
      { subject: { countries: ['Germany'] } },
      { subject: 'this is not a DN' },
      { subject: { commonName: '' } },
    ];
    for (const extra of bad) {
      await assert.rejects(createCertificate({ ...base, ...extra }), isPkiError('INVALID_ARGUMENT'), JSON.stringify(extra));
    }
    await assert.rejects(
      createCertificate({ subject: {}, issuer: 'self', privateKey: key, notBefore: NOW, notAfter: days(1) }),
      isPkiError('INVALID_ARGUMENT'),
    );
  });

  test('issuers are checked: CA flag, matching key, path length', async () => {
    const leaf = await makeLeaf(root);
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const base = { subject: { commonName: 'x' }, publicKey: key, notBefore: NOW, notAfter: days(1) };
    await assert.rejects(
      createCertificate({ ...base, issuer: { certificate: leaf.cert.certificate, privateKey: leaf.key } }),
      isPkiError('NOT_CA'),
    );
    await assert.rejects(
      createCertificate({ ...base, issuer: { certificate: root.cert.certificate, privateKey: key } }),
      isPkiError('KEY_MISMATCH'),
    );
    // The cache is keyed by certificate and key: the right key still works afterwards.
    await createCertificate({ ...base, issuer: root.issuer });
    const inter = await makeIntermediate(root); // pathlen 0
    await assert.rejects(createCertificate({ ...base, issuer: inter.issuer, isCA: true }), isPkiError('INVALID_ARGUMENT'));
    assert.doesNotThrow(() => checkIssuer(inter.issuer));
  });

  test('an RSA 1024 subject key can still be certified (refusing it is the validator’s job)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const cert = await createCertificate({
      subject: { commonName: 'old' },
      issuer: root.issuer,
      publicKey: privateKey,
      notBefore: NOW,
      notAfter: days(1),
    });
    assert.equal(summarizeCertificate(cert.certificate).keyAlgorithm, 'RSA 1024');
  });

  test('issuerFromPem loads a CA from PEM and refuses a non-CA', async () => {
    const issuer = issuerFromPem(root.cert.pem, encodePrivateKeyPem(root.key));
    const leaf = await makeLeaf({ ...root, issuer });
    assert.equal(leaf.cert.certificate.issuer, root.cert.certificate.subject);
    assert.throws(() => issuerFromPem(leaf.cert.pem, encodePrivateKeyPem(leaf.key)), isPkiError('NOT_CA'));
  });
});

describe('reading certificates', () => {
  test('certificatesFromPem reads a chain in order and refuses other blocks', async () => {
    const root = await makeRoot();
    const inter = await makeIntermediate(root);
    const certs = certificatesFromPem(inter.cert.pem + root.cert.pem);
    assert.deepEqual(
      certs.map((c) => c.subject),
      [inter.cert.certificate.subject, root.cert.certificate.subject],
    );
    assert.throws(
      () => certificatesFromPem(inter.cert.pem + encodePrivateKeyPem(inter.key)),
      (err: PkiError) => {
        assert.equal(err.code, 'PEM_INVALID');
        assert.match(err.message, /PEM block 2 is labelled 'EC PRIVATE KEY'/);
        return true;
      },
    );
    assert.throws(() => certificateFromPem(inter.cert.pem + root.cert.pem), isPkiError('CERT_INVALID'));
  });

  test('undecodable DER and trailing bytes are CERT_INVALID', async () => {
    const root = await makeRoot();
    const withTrailing = Buffer.concat([root.cert.der, Buffer.from([0])]);
    const pem = (der: Buffer): string =>
      `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    assert.throws(() => certificateFromPem(pem(withTrailing)), isPkiError('CERT_INVALID'));
    assert.throws(() => certificateFromPem(pem(Buffer.from('3003020101', 'hex'))), isPkiError('CERT_INVALID'));
  });

  test('sha256 fingerprint matches openssl', async () => {
    const root = await makeRoot();
    const out = opensslOk(['x509', '-in', scratch.write('fp.pem', root.cert.pem), '-noout', '-fingerprint', '-sha256']);
    assert.equal(out.trim(), `sha256 Fingerprint=${summarizeCertificate(root.cert.certificate).sha256Fingerprint}`);
  });
});
