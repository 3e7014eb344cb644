import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  canonicalIpAddress,
  certificateFromPem,
  createCertificate,
  generatePrivateKey,
  summarizeCertificate,
} from '../../src/pki/index.js';
import { NOW, Scratch, days, makeRoot, opensslOk, type KeyPairCert } from './fixtures.js';

const scratch = new Scratch();
after(() => scratch.cleanup());

describe('summarizeCertificate', () => {
  let root: KeyPairCert;
  before(async () => {
    root = await makeRoot({ algorithm: 'ECDSA', size: 256 });
  });

  test('formats names exactly as @peculiar/x509 does, for names made by openssl', () => {
    const key = scratch.write('k.pem', opensslOk(['genpkey', '-algorithm', 'ED25519']));
    const bmp = scratch.write('bmp.cnf', '[req]\ndistinguished_name=dn\nstring_mask=MASK:0x800\n[dn]\n');
    const plain = scratch.write('plain.cnf', '[req]\ndistinguished_name=dn\n[dn]\n');
    const subjects: Array<[string, string]> = [
      [plain, '/CN=a+OU=b/O=Comma, Inc./street=1 Main St/postalCode=123/serialNumber=42/emailAddress=x@y.z/DC=example/C=US'],
      [plain, '/CN=Zürich Ω/O=quote" back\\\\slash <angle>;semi/L= leading space/ST=#hash'],
      [bmp, '/CN=Zürich Ω/O=BMP string/OU=x+OU=y'],
      [plain, '/title=Dr/GN=Given/SN=Sur/initials=GS/CN=person'],
    ];
    for (const [config, subj] of subjects) {
      const pem = opensslOk([
        'req',
        '-x509',
        '-new',
        '-key',
        key,
        '-config',
        config,
        '-utf8',
        '-multivalue-rdn',
        '-subj',
        subj,
        '-days',
        '1',
      ]);
      const cert = certificateFromPem(pem);
      const s = summarizeCertificate(cert);
      assert.equal(s.subject, cert.subject, subj);
      assert.equal(s.issuer, cert.issuer, subj);
      assert.equal(s.serialNumber, cert.serialNumber.toUpperCase());
      assert.equal(s.notBefore.getTime(), cert.notBefore.getTime());
      assert.equal(s.keyAlgorithm, 'Ed25519');
    }
  });

  test('accepts DER as well as a parsed certificate', () => {
    assert.deepEqual(summarizeCertificate(root.cert.der), summarizeCertificate(root.cert.certificate));
  });

  test('reports what openssl reports', () => {
    const path = scratch.write('root.pem', root.cert.pem);
    const s = summarizeCertificate(root.cert.der);
    const fp = opensslOk(['x509', '-in', path, '-noout', '-fingerprint', '-sha256']).trim().split('=')[1];
    const fp1 = opensslOk(['x509', '-in', path, '-noout', '-fingerprint', '-sha1']).trim().split('=')[1];
    const serial = opensslOk(['x509', '-in', path, '-noout', '-serial']).trim().split('=')[1];
    assert.equal(s.sha256Fingerprint, fp);
    assert.equal(s.sha1Fingerprint, fp1);
    assert.equal(s.serialNumber, serial);
    assert.equal(s.keyAlgorithm, 'ECDSA P-256');
    assert.equal(s.signatureAlgorithm, 'ECDSA with SHA-256');
    assert.deepEqual(s.keyUsages, ['digital signature', 'cert sign', 'crl sign']);
    assert.equal(s.isCA, true);
  });

  test('IP addresses round-trip in canonical form', async () => {
    const key = await generatePrivateKey({ algorithm: 'ECDSA' });
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
    const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(ipv4, ipv6), { minLength: 1, maxLength: 4 }), async (ips) => {
        const cert = await createCertificate({
          subject: { commonName: 'ip' },
          issuer: root.issuer,
          publicKey: key,
          notBefore: NOW,
          notAfter: days(1),
          ipAddresses: ips,
        });
        assert.deepEqual(summarizeCertificate(cert.der).ipAddresses, ips.map(canonicalIpAddress));
      }),
      { numRuns: 50 },
    );
    assert.equal(canonicalIpAddress('2001:DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(canonicalIpAddress('::ffff:192.0.2.1'), '::ffff:192.0.2.1');
    assert.equal(canonicalIpAddress('0:0:0:0:0:0:0:0'), '::');
  });
});
