// Test certificates made with the openssl CLI: an independent reference, so the store's
// validation is not tested only against certificates our own pki/ made.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pair {
  certPem: string;
  keyPem: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function inTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'sds-certs-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A self-signed ECDSA P-256 CA. */
export function makeCa(commonName = 'Test Root CA', days = 3650): Pair {
  return inTemp((dir) => {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-sha256',
        '-days',
        String(days),
        '-subj',
        `/CN=${commonName}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-out',
        'ca.crt',
      ],
      dir,
    );
    return { certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'ca.key'), 'utf8') };
  });
}

/** A leaf signed by `ca`, for `dnsNames` (first is the CN). `days` may be negative: expired. */
export function makeLeaf(ca: Pair, dnsNames: string[], opts: { days?: number; startDaysAgo?: number } = {}): Pair {
  return inTemp((dir) => {
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(join(dir, 'ca.key'), ca.keyPem);
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'leaf.key'], dir);
    openssl(['req', '-new', '-key', 'leaf.key', '-subj', `/CN=${dnsNames[0]}`, '-out', 'leaf.csr'], dir);
    writeFileSync(
      join(dir, 'ext.cnf'),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(',')}\n`,
    );
    const args = [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-sha256',
      '-extfile',
      'ext.cnf',
      '-out',
      'leaf.crt',
    ];
    if (opts.startDaysAgo !== undefined) {
      // openssl 3.0's x509 command cannot backdate; `openssl ca` takes explicit dates.
      const start = new Date(Date.now() - opts.startDaysAgo * 86_400_000);
      const end = new Date(start.getTime() + (opts.days ?? 1) * 86_400_000);
      writeFileSync(join(dir, 'index.txt'), '');
      writeFileSync(join(dir, 'serial'), '1000\n');
      writeFileSync(
        join(dir, 'ca.cnf'),
        `[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\npolicy=p\ndefault_md=sha256\ncopy_extensions=none\nunique_subject=no\n[p]\ncommonName=supplied\n`,
      );
      openssl(
        [
          'ca',
          '-batch',
          '-config',
          'ca.cnf',
          '-cert',
          'ca.crt',
          '-keyfile',
          'ca.key',
          '-in',
          'leaf.csr',
          '-out',
          'leaf.crt',
          '-notext',
          '-startdate',
          asn1(start),
          '-enddate',
          asn1(end),
          '-extfile',
          'ext.cnf',
        ],
        dir,
      );
    } else {
      openssl([...args, '-days', String(opts.days ?? 30)], dir);
    }
    return { certPem: readFileSync(join(dir, 'leaf.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'leaf.key'), 'utf8') };
  });
}

function asn1(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

/** A fresh unrelated key, for mismatch tests. */
export function makeKey(): string {
  return inTemp((dir) => {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'k.key'], dir);
    return readFileSync(join(dir, 'k.key'), 'utf8');
  });
}

/** A client certificate with this SAN (e.g. `URI:spiffe://...` or `DNS:edge.example.org`), signed by `ca`. */
export function makeClientCert(ca: Pair, san: string): Pair {
  return inTemp((dir) => {
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(join(dir, 'ca.key'), ca.keyPem);
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'c.key'], dir);
    openssl(['req', '-new', '-key', 'c.key', '-subj', '/CN=gateway', '-out', 'c.csr'], dir);
    writeFileSync(join(dir, 'ext.cnf'), `basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=${san}\n`);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        'c.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-sha256',
        '-extfile',
        'ext.cnf',
        '-out',
        'c.crt',
      ],
      dir,
    );
    return { certPem: readFileSync(join(dir, 'c.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'c.key'), 'utf8') };
  });
}
