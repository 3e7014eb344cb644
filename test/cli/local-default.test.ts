// The local default as a person runs it: `envoy-sds serve` with no configuration, then
// `envoy-sds fetch`, the HTTP endpoints, the printed Envoy bootstrap, SIGTERM, restart.
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { checkBootstrapConsistency, checkEnvoyJson, sdsSecretNames } from '../support/envoy-config-check.js';

const CLI = resolve('dist/src/cli.js');
const run = promisify(execFile);

interface Served {
  proc: ChildProcess;
  grpc: string;
  http: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function serve(dataDir: string, grpcAddress = '127.0.0.1:0'): Promise<Served> {
  const proc = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env,
      KUBERNETES_SERVICE_HOST: '',
      ENVOY_SDS_DATA: dataDir,
      ENVOY_SDS_GRPC_ADDRESS: grpcAddress,
      ENVOY_SDS_HTTP_ADDRESS: '127.0.0.1:0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const addresses = new Promise<{ grpc: string; http: string }>((resolveAddr, reject) => {
    const check = () => {
      const g = /serving "localhost" and "localhost-cacert" on (\S+)/.exec(err);
      const h = /"address":"([^"]+)","msg":"HTTP listening/.exec(out);
      if (g && h) resolveAddr({ grpc: g[1]!, http: h[1]! });
    };
    proc.stdout.on('data', (d: Buffer) => {
      out += d;
      check();
    });
    proc.stderr.on('data', (d: Buffer) => {
      err += d;
      check();
    });
    void exited.then((code) => reject(new Error(`server exited (${code}): ${err}`)));
    setTimeout(() => reject(new Error(`server did not start: ${err}`)), 20_000).unref();
  });
  const a = await addresses;
  return { proc, ...a, stderr: () => err, exited };
}

let dataDir: string;
let server: Served;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sds-local-'));
  server = await serve(dataDir);
});
after(async () => {
  if (server.proc.exitCode === null) server.proc.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('local default', () => {
  test('creates a data directory with a root CA and a localhost certificate, keys mode 0600', () => {
    assert.equal(statSync(join(dataDir, 'ca', 'ca.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'certs', 'localhost', 'tls.key')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dataDir, 'ca', 'ca.crt'), 'utf8'), /BEGIN CERTIFICATE/);
  });

  test('`envoy-sds fetch localhost` prints subject, SANs, validity, issuer and fingerprint, not the key', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'fetch', 'localhost', '--server', server.grpc]);
    assert.match(stdout, /secret: localhost/);
    assert.match(stdout, /type: tls_certificate/);
    assert.match(stdout, /subject: +CN=localhost/);
    assert.match(stdout, /SANs: +DNS:localhost, IP:127\.0\.0\.1/);
    assert.match(stdout, /issuer: +.*envoy-sds local root CA/);
    assert.match(stdout, /not after: +\d{4}-/);
    assert.match(stdout, /SHA-256: +([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    assert.doesNotMatch(stdout, /BEGIN (EC |)PRIVATE KEY/);
    assert.match(stdout, /private key: present/);
  });

  test('--show-key prints the key; the CA bundle is served as localhost-cacert', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'fetch', 'localhost', 'localhost-cacert', '--server', server.grpc, '--show-key']);
    assert.match(stdout, /BEGIN PRIVATE KEY/);
    assert.match(stdout, /secret: localhost-cacert\nversion: \w+\ntype: validation_context/);
    assert.match(stdout, /is CA: +true/);
    // Each secret is printed with its own version, the one /status shows for it.
    const status = (await (await fetch(`http://${server.http}/status`)).json()) as { secrets: Array<{ name: string; version: string }> };
    for (const s of status.secrets) assert.match(stdout, new RegExp(`secret: ${s.name}\nversion: ${s.version}\n`));
  });

  test('other names are not served to loopback callers (the policy allows only the two)', async () => {
    await assert.rejects(
      run(process.execPath, [CLI, 'fetch', 'something-else', '--server', server.grpc, '--timeout', '1']),
      (e: { code: number; stderr: string }) => e.code === 1 && /no answer/.test(e.stderr),
    );
  });

  test('/healthz, /readyz and /metrics answer', async () => {
    assert.equal((await fetch(`http://${server.http}/healthz`)).status, 200);
    assert.equal((await fetch(`http://${server.http}/readyz`)).status, 200);
    const metrics = await (await fetch(`http://${server.http}/metrics`)).text();
    for (const m of [
      'envoy_sds_streams_open',
      'envoy_sds_pushes_total',
      'envoy_sds_acks_total',
      'envoy_sds_nacks_total',
      'envoy_sds_secret_updates_total',
    ]) {
      assert.match(metrics, new RegExp(m));
    }
    const status = (await (await fetch(`http://${server.http}/status`)).json()) as { secrets: Array<{ name: string }> };
    assert.deepEqual(status.secrets.map((s) => s.name).sort(), ['localhost', 'localhost-cacert']);
  });

  test('the printed Envoy bootstrap is valid against the upstream protos and uses the served names', () => {
    const yaml = server.stderr().split('# Envoy bootstrap that uses it (envoy -c <file>):\n')[1]!;
    const bootstrap = parse(yaml) as Record<string, unknown>;
    assert.deepEqual(checkEnvoyJson('envoy.config.bootstrap.v3.Bootstrap', bootstrap), []);
    assert.deepEqual(checkBootstrapConsistency(bootstrap), []);
    assert.ok(sdsSecretNames(bootstrap).some((r) => r.name === 'localhost'));
    assert.ok(yaml.includes(`port_value: ${server.grpc.split(':')[1]}`));
  });

  test('SIGTERM ends open streams and exits 0; watch says so, reconnects to the restarted server; data reused', async () => {
    const watch = spawn(process.execPath, [CLI, 'watch', 'localhost', '--server', server.grpc], { stdio: ['ignore', 'pipe', 'pipe'] });
    let wout = '';
    let werr = '';
    watch.stdout.on('data', (d: Buffer) => (wout += d));
    watch.stderr.on('data', (d: Buffer) => (werr += d));
    const until = async (what: string, cond: () => boolean) => {
      const deadline = Date.now() + 20_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`watch: ${what} did not happen; stdout ${wout}; stderr ${werr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until('first version', () => wout.includes('SHA-256'));
    assert.match(wout, /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] received\nsecret: localhost/, 'each version is stamped with its time');
    const fingerprint = /SHA-256: +(\S+)/.exec(wout)![1]!;
    const watchExit = new Promise<number | null>((r) => watch.on('exit', (c) => r(c)));
    server.proc.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    await until('the end of the stream reported', () => /localhost: stream ended \(.*\); reconnecting in/.test(werr));
    const caBefore = readFileSync(join(dataDir, 'ca', 'ca.crt'), 'utf8');
    server = await serve(dataDir, server.grpc);
    assert.equal(readFileSync(join(dataDir, 'ca', 'ca.crt'), 'utf8'), caBefore);
    await until('a version from the restarted server', () => wout.split('SHA-256').length > 2);
    assert.equal(wout.split(fingerprint).length, 3, 'same certificate after restart');
    const { stdout } = await run(process.execPath, [CLI, 'fetch', 'localhost', '--server', server.grpc]);
    assert.ok(stdout.includes(fingerprint), 'same certificate after restart');
    watch.kill('SIGINT');
    assert.equal(await watchExit, 0);
    assert.match(werr, /stopped \(interrupted\)/);
    server.proc.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  });
});
