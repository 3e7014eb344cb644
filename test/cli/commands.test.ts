// The CLI as a person meets it: help on every command, a version, one clear line and
// exit 2 for every user error, bootstraps Envoy accepts, and offline config validation.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { checkBootstrapConsistency, checkEnvoyJson } from '../support/envoy-config-check.js';

const CLI = resolve('dist/src/cli.js');

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 2, exactly one line on stderr, no stack trace, nothing on stdout. */
function assertUserError(r: ReturnType<typeof cli>, mentions: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|ERR_/);
  assert.match(r.stderr, mentions);
}

describe('envoy-sds command line', () => {
  test('bare envoy-sds prints help (it does not start a second server)', () => {
    const r = cli();
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Commands:/);
    for (const c of ['serve', 'fetch', 'watch', 'bootstrap', 'renew', 'validate', 'rotate-ca'])
      assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  });

  test('--help on every subcommand prints its usage and exits 0', () => {
    for (const c of ['serve', 'fetch', 'watch', 'bootstrap', 'renew', 'validate', 'rotate-ca']) {
      for (const flag of ['--help', '-h']) {
        const r = cli(c, flag);
        assert.equal(r.status, 0, `${c} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, /Usage/, `${c} ${flag}`);
        assert.equal(r.stderr, '', `${c} ${flag}`);
      }
    }
  });

  test('--version prints the package version', () => {
    const r = cli('--version');
    assert.equal(r.status, 0);
    const pkg = JSON.parse(spawnSync('cat', ['package.json'], { encoding: 'utf8' }).stdout) as { version: string };
    assert.match(r.stdout, new RegExp(`^envoy-sds ${pkg.version.replace(/\./g, '\\.')} `));
  });

  test('user errors are one line naming what to fix, exit 2', () => {
    assertUserError(cli('fetch', '--bogus', 'x'), /--bogus.*fetch --help/);
    assertUserError(cli('watch', '--server'), /--server/);
    assertUserError(cli('fetch'), /name at least one secret/);
    assertUserError(cli('frobnicate'), /unknown command "frobnicate"/);
    assertUserError(cli('bootstrap', '--server', '18000'), /bootstrap: --server 18000: expected host:port/);
    assertUserError(cli('bootstrap', '--server', '127.0.0.1:99999'), /port 99999 is out of range/);
    assertUserError(cli('bootstrap', '--server', 'unix:relative.sock'), /absolute path/);
    assertUserError(cli('fetch', 'x', '--timeout', 'soon'), /--timeout soon/);
    assertUserError(cli('fetch', 'x', '--token', '@/nonexistent/token'), /cannot read the file/);
    assertUserError(cli('serve', 'extra'), /unexpected argument "extra"/);
    assertUserError(cli('rotate-ca'), /rotate-ca: name one issuer/);
    assertUserError(cli('rotate-ca', 'ca', '--http', '18080'), /--http 18080: expected host:port/);
    assertUserError(cli('rotate-ca', 'ca', '-o', 'yaml'), /-o yaml: expected text or json/);
    assertUserError(cli('rotate-ca', '--status', 'ca'), /--status takes no issuer/);
  });

  describe('bootstrap --server: what Envoy accepts for each kind of address', () => {
    const cases: Array<[string, (cluster: Record<string, unknown>) => void]> = [
      [
        '10.1.2.3:18000',
        (c) => {
          assert.equal(c['type'], 'STATIC');
          assert.match(JSON.stringify(c['load_assignment']), /"socket_address":\{"address":"10\.1\.2\.3","port_value":18000\}/);
        },
      ],
      [
        '[::1]:18000',
        (c) => {
          assert.equal(c['type'], 'STATIC');
          assert.match(JSON.stringify(c['load_assignment']), /"address":"::1","port_value":18000/);
        },
      ],
      [
        'sds.example.com:18000',
        (c) => {
          assert.equal(c['type'], 'STRICT_DNS', 'Envoy refuses a host name in a STATIC cluster');
          assert.match(JSON.stringify(c['load_assignment']), /"address":"sds\.example\.com","port_value":18000/);
        },
      ],
      [
        'unix:/run/envoy-sds/sds.sock',
        (c) => {
          assert.equal(c['type'], 'STATIC');
          assert.match(JSON.stringify(c['load_assignment']), /"pipe":\{"path":"\/run\/envoy-sds\/sds\.sock"\}/);
          assert.doesNotMatch(JSON.stringify(c), /port_value/);
        },
      ],
    ];
    for (const [server, check] of cases) {
      test(server, () => {
        const r = cli('bootstrap', '--server', server);
        assert.equal(r.status, 0, r.stderr);
        const bootstrap = parse(r.stdout) as { static_resources: { clusters: Array<Record<string, unknown>> } };
        assert.deepEqual(checkEnvoyJson('envoy.config.bootstrap.v3.Bootstrap', bootstrap), []);
        assert.deepEqual(checkBootstrapConsistency(bootstrap), []);
        check(bootstrap.static_resources.clusters.find((c) => c['name'] === 'sds-server')!);
      });
    }
  });

  describe('validate --config: checks without starting anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sds-validate-'));
    test('a valid config: exit 0', () => {
      const path = join(dir, 'good.yaml');
      writeFileSync(
        path,
        `grpc: { tcp: { address: 127.0.0.1:0 } }\nsecrets:\n  - name: web\n    tlsCertificate: { certificateChainFile: /etc/x/tls.crt, privateKeyFile: /etc/x/tls.key }\n`,
      );
      const r = cli('validate', '--config', path);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /valid/);
    });
    test('an invalid config: the field path, exit 2, nothing started', () => {
      const path = join(dir, 'bad.yaml');
      writeFileSync(
        path,
        `grpc: { tcp: { address: 127.0.0.1:0 } }\nsecrets:\n  - name: web\n    tlsCertificate: { certificateChainFile: 42 }\n`,
      );
      const r = cli('validate', '--config', path);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /secrets\[0\]\.tlsCertificate/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
    test('unreadable TLS files of the listener are reported together', () => {
      const path = join(dir, 'tls.yaml');
      writeFileSync(path, `grpc: { tcp: { address: 127.0.0.1:0, tls: { certFile: /nonexistent/a.crt, keyFile: /nonexistent/a.key } } }\n`);
      const r = cli('validate', '--config', path);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /grpc\.tcp\.tls\.certFile: cannot read/);
      assert.match(r.stderr, /grpc\.tcp\.tls\.keyFile: cannot read/);
    });
    test('a missing file: exit 2 with the path', () => {
      assertUserErrorLike(cli('validate', '--config', join(dir, 'none.yaml')));
    });
  });
});

function assertUserErrorLike(r: ReturnType<typeof cli>): void {
  assert.equal(r.status, 2);
  assert.match(r.stderr, /none\.yaml: cannot read config file \(ENOENT\)/);
}
