// CRLs and OCSP responses made with the openssl CLI (`openssl ca -gencrl`, `openssl ocsp`),
// an independent reference for what the store's door accepts as `ca.crl` and
// `tls.ocsp-staple`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pair } from './openssl-certs.js';

function inTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'sds-revocation-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `openssl ca` database line for a certificate: V (valid) or R (revoked). */
function indexLine(cert: string, dir: string, revoked: boolean): string {
  writeFileSync(join(dir, 'c.crt'), cert);
  const serial = openssl(['x509', '-in', 'c.crt', '-noout', '-serial'], dir)
    .trim()
    .replace(/^serial=/, '');
  const end = new Date(
    openssl(['x509', '-in', 'c.crt', '-noout', '-enddate'], dir)
      .trim()
      .replace(/^notAfter=/, ''),
  );
  const asn1 = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return `${revoked ? 'R' : 'V'}\t${asn1(end)}\t${revoked ? asn1(new Date(Date.now() - 60_000)) : ''}\t${serial}\tunknown\t/CN=x\n`;
}

function caFiles(ca: Pair, dir: string, index: string): void {
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'ca.key'), ca.keyPem);
  writeFileSync(join(dir, 'index.txt'), index);
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=30\n',
  );
}

/** A PEM CRL signed by `ca`, revoking `revoked` (certificate PEMs). */
export function makeCrl(ca: Pair, revoked: string[] = []): string {
  return inTemp((dir) => {
    caFiles(ca, dir, revoked.map((c) => indexLine(c, dir, true)).join(''));
    openssl(['ca', '-gencrl', '-batch', '-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key', '-out', 'crl.pem'], dir);
    return readFileSync(join(dir, 'crl.pem'), 'utf8');
  });
}

/** A DER OCSP response from `ca` (as its own responder) saying `leaf` is good. */
export function makeOcspResponse(ca: Pair, leaf: Pair): Buffer {
  return inTemp((dir) => {
    caFiles(ca, dir, indexLine(leaf.certPem, dir, false));
    writeFileSync(join(dir, 'leaf.crt'), leaf.certPem);
    openssl(['ocsp', '-issuer', 'ca.crt', '-cert', 'leaf.crt', '-no_nonce', '-reqout', 'req.der'], dir);
    openssl(
      [
        'ocsp',
        '-index',
        'index.txt',
        '-rsigner',
        'ca.crt',
        '-rkey',
        'ca.key',
        '-CA',
        'ca.crt',
        '-reqin',
        'req.der',
        '-respout',
        'resp.der',
        '-ndays',
        '1',
      ],
      dir,
    );
    return readFileSync(join(dir, 'resp.der'));
  });
}
