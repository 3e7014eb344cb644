// DNS-01 with cert-manager's `cnameStrategy: Follow` against a real BIND serving two
// zones and Pebble: `_acme-challenge.app.example.test` is a CNAME into
// `delegated.test`, and the solver holds only the key that may update delegated.test
// (the narrow-credentials setup the strategy exists for). With Follow the TXT record is
// written at the CNAME's target and Pebble validates through the CNAME; without it the
// update goes to example.test and BIND refuses it.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { followCnames } from '../../src/issuance/acme/find-zone.js';
import { startBind, type BindServer } from '../harness/acme/bind.js';
import { startPebble, type PebbleServer } from '../harness/acme/pebble.js';
import { freePort, NAMED, PEBBLE, skipUnlessTools } from '../harness/acme/tools.js';
import {
  V,
  assertVerifies,
  condition,
  isReady,
  readSecretFiles,
  startEngine,
  tempDir,
  waitForStatus,
  type TestEngine,
} from './engine-support.js';

describe('DNS-01 cnameStrategy: Follow, across two zones on BIND', { skip: skipUnlessTools(NAMED, PEBBLE) }, () => {
  let bind: BindServer;
  let pebble: PebbleServer;
  let caBundleFile: string;
  let tsigFile: string;
  let rootsPem: string;
  const engines: TestEngine[] = [];
  const DELEGATED = 'delegated.test';

  before(async () => {
    bind = await startBind({
      zone: 'example.test',
      records: [
        { name: '_acme-challenge.app', type: 'CNAME', value: `app.acme.${DELEGATED}.` },
        // Two hops: a CNAME to a CNAME, still ending in the delegated zone.
        { name: '_acme-challenge.chain', type: 'CNAME', value: '_hop.example.test.' },
        { name: '_hop', type: 'CNAME', value: `chain.acme.${DELEGATED}.` },
      ],
      extraZones: [{ zone: DELEGATED }],
      recursion: true,
    });
    pebble = await startPebble({ dnsServer: `127.0.0.1:${bind.port}`, httpPort: await freePort() });
    const dir = tempDir('dns01-cname-');
    caBundleFile = join(dir, 'pebble-ca.pem');
    writeFileSync(caBundleFile, pebble.caPem);
    tsigFile = join(dir, 'delegated.tsig');
    writeFileSync(tsigFile, `${bind.zoneKeys[DELEGATED]!.secret}\n`, { mode: 0o600 });
    rootsPem = await pebble.rootPem();
  });
  after(async () => {
    for (const e of engines) await e.stop();
    await pebble?.stop();
    await bind?.stop();
  });

  const resources = (cnameStrategy: 'Follow' | 'None' | undefined, dnsNames: string[]) => [
    {
      apiVersion: V,
      kind: 'ClusterIssuer',
      metadata: { name: 'pebble-dns' },
      spec: {
        acme: {
          server: pebble.directoryUrl,
          caBundleFile,
          privateKeySecretRef: { name: 'pebble-dns-account' },
          solvers: [
            {
              dns01: {
                ...(cnameStrategy ? { cnameStrategy } : {}),
                rfc2136: {
                  nameserver: `127.0.0.1:${bind.port}`,
                  tsigKeyName: bind.zoneKeys[DELEGATED]!.name,
                  tsigAlgorithm: 'HMACSHA256',
                  tsigSecretFile: tsigFile,
                },
              },
            },
          ],
        },
      },
    },
    {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'app' },
      spec: { secretName: 'app', dnsNames, issuerRef: { name: 'pebble-dns', kind: 'ClusterIssuer' }, privateKey: { algorithm: 'ECDSA' } },
    },
  ];

  test('the CNAME chain is followed on the nameserver; a name without a CNAME is itself', async () => {
    const server = { host: '127.0.0.1', port: bind.port };
    assert.equal(await followCnames(server, '_acme-challenge.app.example.test'), `app.acme.${DELEGATED}`);
    assert.equal(await followCnames(server, '_acme-challenge.chain.example.test'), `chain.acme.${DELEGATED}`);
    assert.equal(await followCnames(server, '_acme-challenge.plain.example.test'), '_acme-challenge.plain.example.test');
  });

  test('Follow: the TXT records go to the delegated zone with its own key; Pebble validates through the CNAME, wildcard included', async () => {
    const seen: string[][] = [];
    const e = await startEngine(resources('Follow', ['app.example.test', '*.app.example.test', 'chain.example.test']), {
      hook: async (step) => {
        if (step === 'challenges-presented')
          seen.push(await bind.queryTxt(`app.acme.${DELEGATED}`), await bind.queryTxt(`chain.acme.${DELEGATED}`));
      },
    });
    engines.push(e);
    const s = await waitForStatus(e.engine, 'default/app', isReady, 'issued through the CNAMEs');
    const files = readSecretFiles(e.dataDir, 'default', 'app');
    assert.equal(files.leaf.subjectAltName, 'DNS:*.app.example.test, DNS:app.example.test, DNS:chain.example.test');
    assertVerifies(rootsPem, files.crt, 'leaf validated through CNAMEs');
    assert.equal(seen[0]?.length, 2, 'both app.example.test and *.app.example.test records at the CNAME target');
    assert.equal(seen[1]?.length, 1, 'chain.example.test followed through two CNAMEs');
    assert.deepEqual(await bind.queryTxt(`app.acme.${DELEGATED}`), [], 'withdrawn afterwards');
    assert.deepEqual(await bind.queryTxt(`chain.acme.${DELEGATED}`), []);
    assert.deepEqual(
      s.order?.challenges.map((c) => [c.type, c.domain, c.state]),
      [
        ['dns-01', '*.app.example.test', 'valid'],
        ['dns-01', 'app.example.test', 'valid'],
        ['dns-01', 'chain.example.test', 'valid'],
      ],
    );
    assert.ok(!e.logText().includes(bind.zoneKeys[DELEGATED]!.secret), 'the TSIG secret is never logged');
  });

  test('None (the default): the update goes to example.test, which the key may not update; the challenge shows why', async () => {
    const e = await startEngine(resources(undefined, ['app.example.test']));
    engines.push(e);
    const s = await waitForStatus(e.engine, 'default/app', (x) => (x.failedIssuanceAttempts ?? 0) >= 1, 'a failed attempt');
    const challenge = s.order?.challenges.find((c) => c.domain === 'app.example.test');
    assert.equal(challenge?.type, 'dns-01', JSON.stringify(s.order));
    assert.match(challenge?.reason ?? '', /DNS-01 record not presented: .*(REFUSED|NOTAUTH|not authori[sz]ed)/i);
    assert.match(condition(s, 'Issuing')!.message, /REFUSED|NOTAUTH|not authori[sz]ed/i);
  });
});
