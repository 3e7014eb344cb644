import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  PkiError,
  createCsr,
  csrFromPemOrDer,
  generatePrivateKey,
  sameKeyPair,
  signCsr,
  summarizeCertificate,
  certificatePublicKey,
  type KeySpec,
} from '../../src/pki/index.js';
import { NOW, Scratch, days, makeIntermediate, makeRoot, openssl, opensslOk, type KeyPairCert } from './fixtures.js';

const scratch = new Scratch();
after(() => scratch.cleanup());

const SPECS: KeySpec[] = [{ algorithm: 'RSA' }, { algorithm: 'ECDSA' }, { algorithm: 'ECDSA', size: 384 }, { algorithm: 'Ed25519' }];

describe('createCsr', () => {
  for (const spec of SPECS) {
    test(`${spec.algorithm} ${'size' in spec ? String(spec.size ?? '') : ''}: openssl verifies the self-signature and sees the names`, async () => {
      const key = await generatePrivateKey(spec);
      const csr = await createCsr({
        subject: { commonName: 'www.example.com' },
        dnsNames: ['www.example.com', 'example.com'],
        ipAddresses: ['2001:db8::1'],
        privateKey: key,
      });
      assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
      const path = scratch.write('req.pem', csr.pem);
      const out = opensslOk(['req', '-in', path, '-verify', '-noout', '-text']);
      assert.match(out, /Subject: CN = www\.example\.com/);
      assert.match(out, /DNS:www\.example\.com, DNS:example\.com, IP Address:2001:DB8:0:0:0:0:0:1/);
      const parsed = csrFromPemOrDer(csr.der);
      assert.equal(parsed.subject, 'CN=www.example.com');
    });
  }

  test('a CSR for ACME may have no subject, only SANs; usages are requested only when given', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const csr = await createCsr({ dnsNames: ['acme.example.com'], privateKey: key });
    const out = opensslOk(['req', '-in', scratch.write('acme.pem', csr.pem), '-verify', '-noout', '-text']);
    assert.match(out, /X509v3 Subject Alternative Name: critical\n\s+DNS:acme\.example\.com/);
    assert.doesNotMatch(out, /Key Usage/);
    const withUsages = await createCsr({
      subject: { commonName: 'x' },
      privateKey: key,
      keyUsages: ['digital signature'],
      extKeyUsages: ['server auth'],
    });
    const out2 = opensslOk(['req', '-in', scratch.write('u.pem', withUsages.pem), '-noout', '-text']);
    assert.match(out2, /X509v3 Key Usage: critical\n\s+Digital Signature/);
    assert.match(out2, /TLS Web Server Authentication/);
  });

  test('a CSR needs a subject or a SAN', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    await assert.rejects(createCsr({ privateKey: key }), (err: PkiError) => err.code === 'INVALID_ARGUMENT');
  });
});

describe('signCsr', () => {
  let root: KeyPairCert;
  let inter: KeyPairCert;
  before(async () => {
    root = await makeRoot();
    inter = await makeIntermediate(root);
  });

  for (const spec of SPECS) {
    test(`signs a ${spec.algorithm} request: subject and SANs from the CSR, openssl verifies`, async () => {
      const key = await generatePrivateKey(spec);
      const csr = await createCsr({
        subject: { commonName: 'svc.example.com', organizations: ['Example'] },
        dnsNames: ['svc.example.com'],
        uris: ['spiffe://td/svc'],
        privateKey: key,
      });
      const cert = await signCsr(csr.pem, inter.issuer, { notBefore: days(-1), notAfter: days(10), extKeyUsages: ['server auth'] });
      const s = summarizeCertificate(cert.certificate);
      assert.equal(s.subject, 'O=Example, CN=svc.example.com');
      assert.deepEqual(s.dnsNames, ['svc.example.com']);
      assert.deepEqual(s.uris, ['spiffe://td/svc']);
      assert.deepEqual(s.extKeyUsages, ['server auth']);
      assert.equal(s.isCA, false);
      assert.ok(sameKeyPair(certificatePublicKey(cert.certificate), key));
      const res = openssl([
        'verify',
        '-attime',
        String(Math.floor(NOW.getTime() / 1000)),
        '-CAfile',
        scratch.write('r.pem', root.cert.pem),
        '-untrusted',
        scratch.write('i.pem', inter.cert.pem),
        scratch.write('l.pem', cert.pem),
      ]);
      assert.equal(res.status, 0, res.output);
    });
  }

  test('parameters override the requested names; a CA flag in the request is ignored', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const csr = await createCsr({ subject: { commonName: 'asked' }, dnsNames: ['asked.example.com'], isCA: true, privateKey: key });
    const cert = await signCsr(csr.der, inter.issuer, {
      subject: { commonName: 'given' },
      dnsNames: ['given.example.com'],
      notBefore: NOW,
      notAfter: days(1),
    });
    const s = summarizeCertificate(cert.certificate);
    assert.equal(s.subject, 'CN=given');
    assert.deepEqual(s.dnsNames, ['given.example.com']);
    assert.equal(s.isCA, false);
  });

  test('a request whose signature does not verify is CSR_INVALID', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const csr = await createCsr({ subject: { commonName: 'tampered' }, privateKey: key });
    const der = Buffer.from(csr.der);
    const at = der.indexOf(Buffer.from('tampered'));
    der[at] = 'T'.charCodeAt(0);
    await assert.rejects(signCsr(der, inter.issuer, { notBefore: NOW, notAfter: days(1) }), (err: PkiError) => {
      assert.equal(err.code, 'CSR_INVALID');
      assert.match(err.message, /signature does not verify/);
      return true;
    });
  });

  test('garbage and non-CSR PEM are CSR_INVALID or PEM errors', async () => {
    await assert.rejects(
      signCsr('nope', inter.issuer, { notBefore: NOW, notAfter: days(1) }),
      (err: PkiError) => err.code === 'PEM_INVALID',
    );
    await assert.rejects(
      signCsr(inter.cert.pem, inter.issuer, { notBefore: NOW, notAfter: days(1) }),
      (err: PkiError) => err.code === 'CSR_INVALID',
    );
    await assert.rejects(
      signCsr(Buffer.from('3003020101', 'hex'), inter.issuer, { notBefore: NOW, notAfter: days(1) }),
      (err: PkiError) => err.code === 'CSR_INVALID',
    );
  });
});
