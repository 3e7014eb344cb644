// Pebble + BIND wired together, driven by acme-client: the directory over HTTPS, an
// account, a full HTTP-01 order, a full DNS-01 order whose TXT record goes through our
// RFC 2136 client to BIND, and external account binding.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as acme from 'acme-client';
import { startBind, type BindServer } from '../harness/acme/bind.js';
import { startPebble, type PebbleServer } from '../harness/acme/pebble.js';
import { freePort, NAMED, PEBBLE, skipUnlessTools } from '../harness/acme/tools.js';
import { updateTxt } from '../../src/issuance/solvers/rfc2136.js';

/** Serves `/.well-known/acme-challenge/<token>` from a map, like our HTTP-01 solver will. */
async function challengeServer(port: number): Promise<{ tokens: Map<string, string>; requests: string[]; close: () => Promise<void> }> {
  const tokens = new Map<string, string>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.headers.host ?? ''}${req.url ?? ''}`);
    const match = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    const body = match?.[1] === undefined ? undefined : tokens.get(match[1]);
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/plain' }).end(body ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { tokens, requests, close: () => new Promise((r) => server.close(() => r())) };
}

function fastClient(pebble: PebbleServer, accountKey: Buffer, extra: Partial<acme.ClientOptions> = {}): acme.Client {
  return new acme.Client({
    directoryUrl: pebble.directoryUrl,
    accountKey,
    backoffMin: 100,
    backoffMax: 1000,
    backoffAttempts: 30,
    ...extra,
  });
}

function chain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
}

describe('Pebble harness with BIND', { skip: skipUnlessTools(NAMED, PEBBLE) }, () => {
  let bind: BindServer;
  let pebble: PebbleServer;
  let http: Awaited<ReturnType<typeof challengeServer>>;
  let accountKey: Buffer;
  let accountUrl: string;
  const previousAgent = acme.axios.defaults.httpsAgent;
  const acmeLog: string[] = [];
  let startup = '';

  /** On failure, adds what acme-client and Pebble said, so a CI log explains itself. */
  const explained = async <T>(promise: Promise<T>): Promise<T> => {
    try {
      return await promise;
    } catch (err) {
      const context = `\n--- acme-client log ---\n${acmeLog.slice(-30).join('\n')}\n--- pebble output ---\n${pebble.output().slice(-3000)}`;
      throw new Error(`${(err as Error).message}${context}`, { cause: err });
    }
  };

  before(async () => {
    let t0 = Date.now();
    bind = await startBind({ zone: 'example.test' });
    const bindMs = Date.now() - t0;
    const httpPort = await freePort();
    http = await challengeServer(httpPort);
    t0 = Date.now();
    pebble = await startPebble({ dnsServer: `127.0.0.1:${bind.port}`, httpPort });
    const pebbleMs = Date.now() - t0;
    // acme-client talks through its own axios instance; this is its documented hook.
    acme.axios.defaults.httpsAgent = pebble.httpsAgent;
    acme.setLogger((message) => acmeLog.push(message));
    accountKey = await acme.crypto.createPrivateEcdsaKey();
    startup = `named ready in ${bindMs} ms, pebble in ${pebbleMs} ms`;
  });
  after(async () => {
    acme.axios.defaults.httpsAgent = previousAgent;
    await http?.close();
    await pebble?.stop();
    await bind?.stop();
  });

  test('the directory is served over HTTPS with the harness CA', async (t) => {
    t.diagnostic(startup);
    const res = await acme.axios.get(pebble.directoryUrl);
    assert.equal(res.status, 200);
    for (const field of ['newAccount', 'newNonce', 'newOrder']) assert.match(res.data[field], /^https:\/\/127\.0\.0\.1:/);
    const root = new X509Certificate(await pebble.rootPem());
    assert.ok(root.ca);
    assert.notEqual(root.fingerprint256, new X509Certificate(pebble.caPem).fingerprint256);
  });

  test('acme-client creates an account', async () => {
    const client = fastClient(pebble, accountKey);
    const account = await client.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:test@example.test'] });
    assert.equal(account.status, 'valid');
    accountUrl = client.getAccountUrl();
    assert.match(accountUrl, /^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
  });

  // The orders reuse the account by URL, as the engine will (it persists the URL). Note:
  // acme-client's auto() on a *known key without accountUrl* re-posts newAccount, gets
  // HTTP 200 and then sends an update with only termsOfServiceAgreed, which Pebble
  // -strict rejects ("Use POST-as-GET to retrieve account data instead of doing an
  // empty update").
  test('HTTP-01: Pebble resolves web.example.test through BIND and fetches the key authorization', async () => {
    const client = fastClient(pebble, accountKey, { accountUrl });
    const [, csr] = await acme.crypto.createCsr({ commonName: 'web.example.test', altNames: ['web.example.test'] });
    const certPem = await explained(
      client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        skipChallengeVerification: true, // acme-client would resolve through the system DNS
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          http.tokens.set(challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          http.tokens.delete(challenge.token);
        },
      }),
    );
    const [leaf, intermediate] = chain(certPem);
    assert.ok(leaf && intermediate, 'leaf and intermediate');
    assert.match(leaf.subjectAltName ?? '', /DNS:web\.example\.test/);
    assert.ok(leaf.verify(intermediate.publicKey));
    assert.ok(
      http.requests.some((r) => r.startsWith('web.example.test:') && r.includes('/.well-known/acme-challenge/')),
      http.requests.join(', '),
    );
    const root = new X509Certificate(await pebble.rootPem());
    assert.ok(intermediate.verify(root.publicKey) || intermediate.checkIssued(root), 'intermediate chains to the management root');
  });

  test('DNS-01: the TXT record goes to BIND through our RFC 2136 client and Pebble validates it', async () => {
    const client = fastClient(pebble, accountKey, { accountUrl });
    const [, csr] = await acme.crypto.createCsr({ commonName: 'dns.example.test', altNames: ['dns.example.test', '*.wild.example.test'] });
    const server = { host: bind.host, port: bind.port };
    const published: string[] = [];
    const certPem = await explained(
      client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['dns-01'],
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
          const name = `_acme-challenge.${authz.identifier.value}`;
          await updateTxt(server, bind.tsig, bind.zone, { action: 'add', name, value: keyAuthorization });
          published.push(name);
          assert.ok((await bind.queryTxt(name)).includes(keyAuthorization));
        },
        challengeRemoveFn: async (authz, _challenge, keyAuthorization) => {
          await updateTxt(server, bind.tsig, bind.zone, {
            action: 'delete',
            name: `_acme-challenge.${authz.identifier.value}`,
            value: keyAuthorization,
          });
        },
      }),
    );
    assert.deepEqual(published.sort(), ['_acme-challenge.dns.example.test', '_acme-challenge.wild.example.test']);
    const [leaf] = chain(certPem);
    assert.ok(leaf);
    assert.match(leaf.subjectAltName ?? '', /DNS:dns\.example\.test/);
    assert.match(leaf.subjectAltName ?? '', /DNS:\*\.wild\.example\.test/);
    for (const name of published) assert.deepEqual(await bind.queryTxt(name), [], `${name} cleaned up`);
  });
});

describe('Pebble harness with external account binding', { skip: skipUnlessTools(NAMED, PEBBLE) }, () => {
  let bind: BindServer;
  let pebble: PebbleServer;
  const previousAgent = acme.axios.defaults.httpsAgent;
  before(async () => {
    bind = await startBind({ zone: 'example.test' });
    pebble = await startPebble({ dnsServer: `127.0.0.1:${bind.port}`, httpPort: await freePort(), eab: true });
    acme.axios.defaults.httpsAgent = pebble.httpsAgent;
  });
  after(async () => {
    acme.axios.defaults.httpsAgent = previousAgent;
    await pebble?.stop();
    await bind?.stop();
  });

  test('an account without EAB is refused, one with the harness EAB key is created', async () => {
    assert.ok(pebble.eab);
    const accountKey = await acme.crypto.createPrivateEcdsaKey();
    await assert.rejects(fastClient(pebble, accountKey).createAccount({ termsOfServiceAgreed: true }), /externalAccountBinding/);
    const account = await fastClient(pebble, accountKey, { externalAccountBinding: pebble.eab }).createAccount({
      termsOfServiceAgreed: true,
    });
    assert.equal(account.status, 'valid');
  });
});
