// The ACME issuer against a real ACME server (Pebble) whose names resolve through a real
// BIND: HTTP-01 answered on the engine's HTTP route, DNS-01 (with a wildcard) through
// RFC 2136, failures, an unreachable server, a crash in the middle of an order, and a
// restricted ClusterIssuer.

import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backoffDelayMs } from '../../src/issuance/backoff.js';
import type { IssuanceEngine } from '../../src/issuance/engine.js';
import type { IssuanceStep, StepInfo } from '../../src/issuance/issuance-hooks.js';
import { startBind, type BindServer } from '../harness/acme/bind.js';
import { startPebble, type PebbleServer } from '../harness/acme/pebble.js';
import { freePort, NAMED, PEBBLE, skipUnlessTools } from '../harness/acme/tools.js';
import {
  V,
  assertVerifies,
  certificateDir,
  condition,
  isReady,
  readSecretFiles,
  revisionAtLeast,
  routeServer,
  secretDir,
  startEngine,
  tempDir,
  waitForStatus,
  type TestEngine,
} from './engine-support.js';

const spki = (pem: string) => createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');

/** A TCP forwarder to Pebble that can refuse connections: "the ACME server is down". */
async function switchableProxy(targetPort: number): Promise<{ port: number; up: boolean; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { port: 0, up: true, close: async () => {} };
  const server: Server = createServer((client) => {
    if (!state.up) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as { port: number }).port;
  state.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return state;
}

describe('ACME issuer against Pebble and BIND', { skip: skipUnlessTools(NAMED, PEBBLE) }, () => {
  let bind: BindServer;
  let pebble: PebbleServer;
  let routes: Awaited<ReturnType<typeof routeServer>>;
  let current: IssuanceEngine | undefined;
  let caBundleFile: string;
  let tsigFile: string;
  let rootsPem: string;
  const engines: TestEngine[] = [];

  before(async () => {
    bind = await startBind({ zone: 'example.test' });
    const httpPort = await freePort();
    routes = await routeServer(httpPort, () => current);
    pebble = await startPebble({ dnsServer: `127.0.0.1:${bind.port}`, httpPort });
    const dir = tempDir('acme-shared-');
    caBundleFile = join(dir, 'pebble-ca.pem');
    writeFileSync(caBundleFile, pebble.caPem);
    tsigFile = join(dir, 'tsig.secret');
    writeFileSync(tsigFile, `${bind.tsig.secret}\n`, { mode: 0o600 });
    rootsPem = await pebble.rootPem();
  });
  after(async () => {
    for (const e of engines) await e.stop();
    await routes?.close();
    await pebble?.stop();
    await bind?.stop();
  });

  function issuer(name: string, opts: { server?: string; restrictions?: unknown; tsig?: 'secretRef' | 'file' } = {}) {
    const rfc2136 = {
      nameserver: `127.0.0.1:${bind.port}`,
      tsigKeyName: bind.tsig.name,
      tsigAlgorithm: 'HMACSHA256',
      ...(opts.tsig === 'file' ? { tsigSecretFile: tsigFile } : { tsigSecretSecretRef: { name: 'tsig', key: 'secret' } }),
    };
    return {
      apiVersion: V,
      kind: 'ClusterIssuer',
      metadata: { name },
      spec: {
        acme: {
          server: opts.server ?? pebble.directoryUrl,
          email: 'ops@example.test',
          caBundleFile,
          privateKeySecretRef: { name: `${name}-account-key` },
          solvers: [
            { selector: { dnsZones: ['dns.example.test'] }, dns01: { rfc2136 } },
            { http01: { ingress: { ingressClassName: 'nginx' } } },
          ],
        },
        ...(opts.restrictions ? { restrictions: opts.restrictions } : {}),
      },
    };
  }

  const certificate = (name: string, dnsNames: string[], namespace = 'default', issuerName = 'pebble') => ({
    apiVersion: V,
    kind: 'Certificate',
    metadata: { name, namespace },
    spec: { secretName: name, dnsNames, issuerRef: { name: issuerName, kind: 'ClusterIssuer' }, privateKey: { algorithm: 'ECDSA' } },
  });

  async function engineFor(resources: unknown[], opts: Parameters<typeof startEngine>[1] = {}): Promise<TestEngine> {
    const dataDir = opts.dataDir ?? tempDir('acme-');
    // The TSIG secret as a Secret in the cluster resource namespace, as cert-manager keeps it.
    const tsigDir = secretDir(dataDir, 'cert-manager', 'tsig');
    mkdirSync(tsigDir, { recursive: true });
    writeFileSync(join(tsigDir, 'secret'), bind.tsig.secret, { mode: 0o600 });
    const e = await startEngine(resources, { ...opts, dataDir });
    engines.push(e);
    current = e.engine;
    return e;
  }

  test('HTTP-01: Pebble fetches the key authorization from the engine route; the account key is made once and reused', async () => {
    const e = await engineFor([issuer('pebble'), certificate('web', ['web.example.test'])]);
    const s = await waitForStatus(e.engine, 'default/web', isReady, 'issued by Pebble');
    assert.equal(s.revision, 1);
    const files = readSecretFiles(e.dataDir, 'default', 'web');
    assert.equal(files.leaf.subjectAltName, 'DNS:web.example.test');
    assert.equal(files.ca, undefined, 'ACME names no root: no ca.crt');
    assertVerifies(rootsPem, files.crt, 'Pebble leaf + intermediate against the Pebble root');
    assert.ok(
      routes.requests.some((r) => r.startsWith('GET web.example.test') && r.includes('/.well-known/acme-challenge/')),
      routes.requests.join('\n'),
    );
    assert.equal(e.engine.http01.size, 0, 'challenge tokens are withdrawn');

    const accountDir = secretDir(e.dataDir, 'cert-manager', 'pebble-account-key');
    const accountKey = readFileSync(join(accountDir, 'tls.key'), 'utf8');
    assert.equal(statSync(join(accountDir, 'tls.key')).mode & 0o777, 0o600);
    const annotations = JSON.parse(readFileSync(join(accountDir, '.annotations.json'), 'utf8'));
    assert.match(annotations['envoy-sds.io/acme-account-url'], /\/my-account\//);

    await e.engine.renew('default/web');
    await waitForStatus(e.engine, 'default/web', revisionAtLeast(2), 'renewed');
    assert.equal(readFileSync(join(accountDir, 'tls.key'), 'utf8'), accountKey, 'the account key is reused');
    assert.equal(e.logText().match(/ACME account registered/g)?.length, 1, 'registered once');
    assert.ok(!e.logText().includes('PRIVATE KEY'));
  });

  test('DNS-01 with a wildcard: TXT records go to BIND through RFC 2136 and are withdrawn afterwards', async () => {
    const e = await engineFor([issuer('pebble', { tsig: 'file' }), certificate('wild', ['dns.example.test', '*.dns.example.test'])]);
    await waitForStatus(e.engine, 'default/wild', isReady, 'issued');
    const files = readSecretFiles(e.dataDir, 'default', 'wild');
    assert.equal(files.leaf.subjectAltName, 'DNS:*.dns.example.test, DNS:dns.example.test');
    assertVerifies(rootsPem, files.crt, 'wildcard leaf');
    assert.deepEqual(await bind.queryTxt('_acme-challenge.dns.example.test'), [], 'challenge records removed');
    assert.ok(!routes.requests.some((r) => r.includes('dns.example.test')), 'no HTTP-01 for the dns01-selected zone');
    assert.ok(!e.logText().includes(bind.tsig.secret), 'the TSIG secret is never logged');
  });

  test('a failing challenge: Ready=False with the reason, failures counted on the backoff, the old certificate kept', async (t) => {
    const first = await engineFor([issuer('pebble'), certificate('app', ['app.example.test'])]);
    await waitForStatus(first.engine, 'default/app', isReady, 'first issuance');
    await first.stop();
    const served = readSecretFiles(first.dataDir, 'default', 'app');

    // A name outside the zone BIND serves: Pebble cannot resolve it, the challenge fails.
    const e = await engineFor([issuer('pebble'), certificate('app', ['app.example.test', 'nowhere.unserved.test'])], {
      dataDir: first.dataDir,
    });
    const s = await waitForStatus(e.engine, 'default/app', (x) => (x.failedIssuanceAttempts ?? 0) >= 2, 'two failed attempts');
    const ready = condition(s, 'Ready')!;
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, 'SecretMismatch');
    assert.match(ready.message, /missing \[nowhere\.unserved\.test\].*issuance failed: .*nowhere\.unserved\.test/);
    const issuing = condition(s, 'Issuing')!;
    t.diagnostic(`Ready: ${ready.message}`);
    t.diagnostic(`Issuing: ${issuing.message}`);
    assert.equal(issuing.status, 'False');
    assert.equal(issuing.reason, 'Failed');
    const retryAt = /retried after (\S+):/.exec(issuing.message)?.[1];
    assert.ok(retryAt, issuing.message);
    assert.equal(
      Date.parse(retryAt) - Date.parse(s.lastFailureTime!),
      backoffDelayMs(s.failedIssuanceAttempts!, { backoffInitialMs: 200, backoffMaxMs: 1000 }),
    );
    assert.equal(readSecretFiles(e.dataDir, 'default', 'app').crt, served.crt, 'the served certificate is untouched');
    const r = e.engine.readiness();
    assert.equal(r.ready, true, 'a certificate is still served: degraded, not unready');
    assert.match(r.reasons.join('\n'), /default\/app: Ready=False \(SecretMismatch\)/);
  });

  test('the status shows the order and each challenge: type, domain, state, reason; the ClusterIssuer is Ready with its account', async (t) => {
    const e = await engineFor([
      issuer('pebble'),
      certificate('orders-ok', ['ok.example.test']),
      certificate('orders-bad', ['bad.example.test', 'nowhere.unserved.test']),
    ]);
    const ok = await waitForStatus(
      e.engine,
      'default/orders-ok',
      (x) => isReady(x) && x.order?.state === 'valid',
      'issued with a valid order',
    );
    assert.match(ok.order!.url, /^https:\/\/127\.0\.0\.1:\d+\/my-order\//);
    assert.deepEqual(
      ok.order!.challenges.map(({ type, domain, state, presented, reason }) => ({ type, domain, state, presented, reason })),
      [{ type: 'http-01', domain: 'ok.example.test', state: 'valid', presented: false, reason: undefined }],
      'the challenge passed and its token is withdrawn',
    );
    assert.match(ok.order!.challenges[0]!.url, /\/chalZ?\//i);

    // nowhere.unserved.test is outside the zone BIND serves: Pebble cannot resolve it.
    const bad = await waitForStatus(
      e.engine,
      'default/orders-bad',
      (x) => (x.failedIssuanceAttempts ?? 0) >= 1 && x.order?.state === 'invalid',
      'a failed attempt with its order',
    );
    t.diagnostic(`failing ACME issuance, status of default/orders-bad:\n${JSON.stringify(bad, null, 2)}`);
    const failed = bad.order!.challenges.find((c) => c.domain === 'nowhere.unserved.test');
    assert.ok(failed, JSON.stringify(bad.order));
    assert.equal(failed.type, 'http-01');
    assert.equal(failed.state, 'invalid');
    assert.equal(failed.presented, false, 'withdrawn after the attempt');
    assert.match(failed.reason ?? '', /dns|NXDOMAIN|unknownHost|connection/i);
    assert.match(condition(bad, 'Issuing')!.message, /http-01 for nowhere\.unserved\.test failed/);
    assert.ok(
      bad.order!.challenges.some((c) => c.domain === 'bad.example.test'),
      'every authorization of the order is listed',
    );

    const issuers = e.engine.issuerStatus();
    const pebbleIssuer = issuers.find((i) => i.kind === 'ClusterIssuer' && i.name === 'pebble');
    const readyCondition = pebbleIssuer?.status?.conditions.find((c) => c.type === 'Ready');
    assert.equal(readyCondition?.status, 'True', JSON.stringify(pebbleIssuer));
    assert.equal(readyCondition?.reason, 'ACMEAccountRegistered');
    assert.match(pebbleIssuer?.status?.acme?.uri ?? '', /\/my-account\//);
    assert.equal(pebbleIssuer?.status?.acme?.lastRegisteredEmail, 'ops@example.test');
  });

  test('an ACME issuer whose server does not answer is Ready=False (ErrRegisterACMEAccount); the engine starts anyway', async () => {
    const port = await freePort();
    const e = await engineFor([
      issuer('nowhere', { server: `https://127.0.0.1:${port}/dir` }),
      certificate('unreachable', ['u.example.test'], 'default', 'nowhere'),
    ]);
    let report = e.engine.issuerStatus().find((i) => i.name === 'nowhere');
    for (const deadline = Date.now() + 30_000; !report?.status && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 20));
      report = e.engine.issuerStatus().find((i) => i.name === 'nowhere');
    }
    const ready = report?.status?.conditions[0];
    assert.equal(ready?.status, 'False', JSON.stringify(report));
    assert.equal(ready?.reason, 'ErrRegisterACMEAccount');
    assert.match(ready?.message ?? '', /Failed to register ACME account: .*(ECONNREFUSED|no response)/);
  });

  test('the ACME server down, then back: failures while it is unreachable, issued once it answers', async (t) => {
    const port = Number(new URL(pebble.directoryUrl).port);
    const proxy = await switchableProxy(port);
    try {
      proxy.up = false;
      const server = pebble.directoryUrl.replace(`:${port}/`, `:${proxy.port}/`);
      const e = await engineFor([issuer('via-proxy', { server }), certificate('later', ['later.example.test'], 'default', 'via-proxy')]);
      const down = await waitForStatus(e.engine, 'default/later', (x) => (x.failedIssuanceAttempts ?? 0) >= 1, 'a failure while down');
      assert.equal(condition(down, 'Ready')?.reason, 'DoesNotExist');
      t.diagnostic(`Issuing while down: ${condition(down, 'Issuing')!.message}`);
      assert.match(
        condition(down, 'Issuing')!.message,
        /no response from the ACME server https:\/\/127\.0\.0\.1:\d+ \((socket hang up|read ECONNRESET|Client network socket disconnected)/,
      );
      proxy.up = true;
      const s = await waitForStatus(e.engine, 'default/later', isReady, 'issued after the server came back');
      assert.equal(s.failedIssuanceAttempts, undefined, 'cleared by the success');
      assertVerifies(rootsPem, readSecretFiles(e.dataDir, 'default', 'later').crt, 'issued through the proxy');
    } finally {
      await proxy.close();
    }
  });

  test('a crash after the order is placed: the restart continues the same order with the same key', async () => {
    let created: StepInfo | undefined;
    let reached!: () => void;
    const orderPlaced = new Promise<void>((r) => (reached = r));
    const first = await engineFor([issuer('pebble'), certificate('resume', ['resume.example.test'])], {
      // Holds the attempt right after the order URL is persisted, until the engine stops.
      hook: (step, info, signal) => {
        if (step !== 'order-created') return;
        created = info;
        reached();
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
    });
    await orderPlaced;
    const dir = certificateDir(first.dataDir, 'default', 'resume');
    const nextKey = readFileSync(join(dir, 'next.key'), 'utf8');
    assert.equal(statSync(join(dir, 'next.key')).mode & 0o777, 0o600);
    const order = JSON.parse(readFileSync(join(dir, 'order.json'), 'utf8'));
    assert.equal(order.orderUrl, created?.orderUrl);
    await first.stop();
    assert.ok(!existsSync(join(secretDir(first.dataDir, 'default', 'resume'), 'tls.crt')), 'nothing issued before the crash');

    const steps: Array<{ step: IssuanceStep; orderUrl: string | undefined }> = [];
    const second = await engineFor([issuer('pebble'), certificate('resume', ['resume.example.test'])], {
      dataDir: first.dataDir,
      hook: (step, info) => void steps.push({ step, orderUrl: info.orderUrl }),
    });
    await waitForStatus(second.engine, 'default/resume', isReady, 'issued after restart');
    assert.deepEqual(
      steps.filter((x) => x.step === 'order-created' || x.step === 'order-resumed' || x.step === 'order-finalized'),
      [
        { step: 'order-resumed', orderUrl: created?.orderUrl },
        { step: 'order-finalized', orderUrl: created?.orderUrl },
      ],
      'no second order: the persisted one was finalized',
    );
    const files = readSecretFiles(second.dataDir, 'default', 'resume');
    assert.equal(spki(files.key), spki(nextKey), 'the certificate carries the key persisted before the crash');
    assert.ok(!existsSync(join(dir, 'next.key')) && !existsSync(join(dir, 'order.json')), 'in-progress state removed once persisted');
  });

  test('a crash right after the next key is persisted: the restart uses that key and places one order', async () => {
    let reached!: () => void;
    const keyPersisted = new Promise<void>((r) => (reached = r));
    const first = await engineFor([issuer('pebble'), certificate('early', ['early.example.test'])], {
      hook: (step, _info, signal) => {
        if (step !== 'key-persisted') return;
        reached();
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
    });
    await keyPersisted;
    const nextKey = readFileSync(join(certificateDir(first.dataDir, 'default', 'early'), 'next.key'), 'utf8');
    await first.stop();
    const steps: IssuanceStep[] = [];
    const second = await engineFor([issuer('pebble'), certificate('early', ['early.example.test'])], {
      dataDir: first.dataDir,
      hook: (step) => void steps.push(step),
    });
    await waitForStatus(second.engine, 'default/early', isReady, 'issued after restart');
    assert.equal(steps.filter((s) => s === 'order-created').length, 1);
    assert.equal(spki(readSecretFiles(second.dataDir, 'default', 'early').key), spki(nextKey));
  });

  test('a restricted ClusterIssuer refuses a foreign namespace and a foreign name without generating a key or placing an order', async () => {
    const steps: string[] = [];
    const restrictions = { namespaces: ['team-a'], dnsNames: ['*.team-a.example.test'] };
    const e = await engineFor(
      [
        issuer('shared', { restrictions }),
        certificate('ok', ['api.team-a.example.test'], 'team-a', 'shared'),
        certificate('foreign-ns', ['api.team-a.example.test'], 'team-b', 'shared'),
        certificate('foreign-name', ['api.team-b.example.test'], 'team-a', 'shared'),
      ],
      { hook: (step, info) => void steps.push(`${step} ${info.certificate}`) },
    );
    const ns = await waitForStatus(e.engine, 'team-b/foreign-ns', (x) => condition(x, 'Ready')?.reason === 'Denied', 'denied');
    assert.match(condition(ns, 'Ready')!.message, /may not be used from namespace "team-b"/);
    const name = await waitForStatus(e.engine, 'team-a/foreign-name', (x) => condition(x, 'Ready')?.reason === 'Denied', 'denied');
    assert.match(condition(name, 'Ready')!.message, /may not issue for "api\.team-b\.example\.test"/);
    await waitForStatus(e.engine, 'team-a/ok', isReady, 'the allowed one is issued');
    await e.engine.idle();
    assert.deepEqual(
      steps.filter((s) => !s.endsWith('team-a/ok')),
      [],
      'no key, no order for refused certificates',
    );
    assert.ok(steps.includes('order-created team-a/ok'));
    for (const [n, c] of [
      ['team-b', 'foreign-ns'],
      ['team-a', 'foreign-name'],
    ] as const) {
      assert.ok(!existsSync(join(certificateDir(e.dataDir, n, c), 'next.key')));
      assert.ok(!existsSync(join(secretDir(e.dataDir, n, c), 'tls.crt')));
    }
    assert.equal(e.engine.readiness().ready, true, 'refused certificates are reported, not blocking');
  });
});

describe('ACME issuer with external account binding', { skip: skipUnlessTools(NAMED, PEBBLE) }, () => {
  let bind: BindServer;
  let pebble: PebbleServer;
  let routes: Awaited<ReturnType<typeof routeServer>>;
  let current: IssuanceEngine | undefined;
  const engines: TestEngine[] = [];
  before(async () => {
    bind = await startBind({ zone: 'example.test' });
    const httpPort = await freePort();
    routes = await routeServer(httpPort, () => current);
    pebble = await startPebble({ dnsServer: `127.0.0.1:${bind.port}`, httpPort, eab: true });
  });
  after(async () => {
    for (const e of engines) await e.stop();
    await routes?.close();
    await pebble?.stop();
    await bind?.stop();
  });

  test('the account is registered with the EAB key from its Secret; until that Secret exists the certificate waits', async () => {
    const dataDir = tempDir('acme-eab-');
    const caFile = join(dataDir, 'pebble-ca.pem');
    writeFileSync(caFile, pebble.caPem);
    const e = await startEngine(
      [
        {
          apiVersion: V,
          kind: 'Issuer',
          metadata: { name: 'eab', namespace: 'default' },
          spec: {
            acme: {
              server: pebble.directoryUrl,
              caBundleFile: caFile,
              privateKeySecretRef: { name: 'eab-account' },
              externalAccountBinding: { keyID: pebble.eab!.kid, keySecretRef: { name: 'eab-hmac', key: 'secret' } },
              solvers: [{ http01: {} }],
            },
          },
        },
        {
          apiVersion: V,
          kind: 'Certificate',
          metadata: { name: 'bound' },
          spec: { secretName: 'bound', dnsNames: ['bound.example.test'], issuerRef: { name: 'eab' }, privateKey: { algorithm: 'ECDSA' } },
        },
      ],
      { dataDir },
    );
    engines.push(e);
    current = e.engine;
    const waiting = await waitForStatus(
      e.engine,
      'default/bound',
      (x) => /Waiting for the issuer/.test(condition(x, 'Issuing')?.message ?? ''),
      'waiting for the EAB Secret',
    );
    assert.match(
      condition(waiting, 'Issuing')!.message,
      /external account binding Secret default\/eab-hmac \(key "secret"\) does not exist/,
    );
    const dir = secretDir(dataDir, 'default', 'eab-hmac');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'secret'), pebble.eab!.hmacKey, { mode: 0o600 });
    await waitForStatus(e.engine, 'default/bound', isReady, 'issued once the EAB Secret exists');
    assert.ok(!e.logText().includes(pebble.eab!.hmacKey), 'the EAB key is never logged');
  });
});
