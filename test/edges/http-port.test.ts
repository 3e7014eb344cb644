// The HTTP port tried as a web page and as a DNS-rebinding attacker would: state-changing
// endpoints need POST + JSON + a custom header, a foreign Origin is refused, renewals are
// rate-limited, every path but the ACME one refuses a foreign Host, and details are
// limited when the port faces more than loopback.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CONTROL_PREFIX, controlRoutes, type EngineControls } from '../../src/issuance/control-routes.js';
import { makeFixtures, metricTotal, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

const CLI = resolve('dist/src/cli.js');
const run = promisify(execFile);

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A raw request, so the test decides every header (fetch would not let it set Host). */
function send(address: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const i = address.lastIndexOf(':');
  return new Promise((resolveReply, reject) => {
    const req = request(
      {
        host: address.slice(0, i).replace(/^\[|\]$/g, ''),
        port: Number(address.slice(i + 1)),
        method,
        path,
        headers,
        setHost: !('host' in headers),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolveReply({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const RENEW_HEADERS = { 'content-type': 'application/json', 'x-envoy-sds-intent': 'renew' };

class FakeControls implements EngineControls {
  renewals = 0;
  find(ref: string): string[] {
    return ref === 'web' || ref === 'default/web' ? ['default/web'] : ref === 'other' ? ['default/other'] : [];
  }
  async renew(): Promise<string> {
    this.renewals++;
    return new Date().toISOString();
  }
  status(): unknown {
    return { certificates: [] };
  }
}

let fx: Fixtures;
before(() => {
  fx = makeFixtures();
});

describe('state-changing endpoints', () => {
  let server: TestServer;
  let controls: FakeControls;
  before(async () => {
    controls = new FakeControls();
    server = await startTestServer({}, { httpRoutes: new Map([[CONTROL_PREFIX, controlRoutes(controls, { trustLoopback: true })]]) });
  });
  after(() => server.stop());

  test('a renew POST from a web page (Origin: http://evil.example, text/plain) is refused and renews nothing', async () => {
    const r = await send(
      server.httpAddress!,
      'POST',
      '/issuance/renew/default/web',
      { origin: 'http://evil.example', 'content-type': 'text/plain' },
      'x',
    );
    assert.equal(r.status, 403, r.body);
    // Even with everything else right, a foreign Origin is refused.
    const dressed = await send(
      server.httpAddress!,
      'POST',
      '/issuance/renew/default/web',
      { ...RENEW_HEADERS, origin: 'http://evil.example' },
      '{}',
    );
    assert.equal(dressed.status, 403, dressed.body);
    const crossSite = await send(
      server.httpAddress!,
      'POST',
      '/issuance/renew/default/web',
      { ...RENEW_HEADERS, 'sec-fetch-site': 'cross-site' },
      '{}',
    );
    assert.equal(crossSite.status, 403, crossSite.body);
    assert.equal(controls.renewals, 0);
  });

  test('a renew POST needs a JSON body and the x-envoy-sds-intent header (what a browser cannot send without a preflight)', async () => {
    const bare = await send(server.httpAddress!, 'POST', '/issuance/renew/default/web');
    assert.equal(bare.status, 400, bare.body);
    const form = await send(
      server.httpAddress!,
      'POST',
      '/issuance/renew/default/web',
      { 'x-envoy-sds-intent': 'renew', 'content-type': 'application/x-www-form-urlencoded' },
      'a=b',
    );
    assert.equal(form.status, 415, form.body);
    const notJson = await send(server.httpAddress!, 'POST', '/issuance/renew/default/web', RENEW_HEADERS, 'renew please');
    assert.equal(notJson.status, 400, notJson.body);
    const get = await send(server.httpAddress!, 'GET', '/issuance/renew/default/web');
    assert.equal(get.status, 405);
    assert.equal(controls.renewals, 0);
  });

  test('ten renew POSTs for one certificate cause one renewal; the rest get 429 with Retry-After', async () => {
    const replies: Reply[] = [];
    for (let i = 0; i < 10; i++) replies.push(await send(server.httpAddress!, 'POST', '/issuance/renew/default/web', RENEW_HEADERS, '{}'));
    assert.deepEqual(
      replies.map((r) => r.status),
      [202, 429, 429, 429, 429, 429, 429, 429, 429, 429],
    );
    assert.match(String(replies[1]!.headers['retry-after']), /^\d+$/);
    assert.equal(controls.renewals, 1);
  });

  test('`envoy-sds renew` sends what the endpoint requires', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'renew', 'other', '--http', server.httpAddress!]);
    assert.match(stdout, /^renewal of default\/other requested at \S+\n$/);
    assert.equal(controls.renewals, 2);
  });
});

describe('Host checks (DNS rebinding)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ http: { address: '127.0.0.1:0', allowedHosts: ['sds.internal.example'] } });
    server.put('web', tls(fx.web1));
  });
  after(() => server.stop());

  test('/status, /, /metrics, /healthz and /readyz refuse a Host that is not the server (evil.example)', async () => {
    for (const path of ['/status', '/', '/metrics', '/healthz', '/readyz', '/issuance/status']) {
      const r = await send(server.httpAddress!, 'GET', path, { host: 'evil.example' });
      assert.equal(r.status, 421, `${path}: ${r.body}`);
      assert.doesNotMatch(r.body, /web/);
    }
    const noHost = await send(server.httpAddress!, 'GET', '/status', { host: '' });
    assert.equal(noHost.status, 421);
    assert.equal(await metricTotal(server.metrics.httpRefused), 7, 'counted in envoy_sds_http_refused_total');
  });

  test('the bound address, localhost and configured names are answered', async () => {
    const port = server.httpAddress!.split(':').pop();
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'sds.internal.example', `SDS.internal.example.:${port}`]) {
      const r = await send(server.httpAddress!, 'GET', '/status', { host });
      assert.equal(r.status, 200, host);
      assert.match(r.body, /"web"/, 'full details on a loopback-bound port');
    }
  });

  test('/.well-known/acme-challenge/ answers any Host (the ACME validator uses the certificate name)', async () => {
    const r = await send(server.httpAddress!, 'GET', '/.well-known/acme-challenge/some-token', { host: 'www.example.com' });
    assert.notEqual(r.status, 421);
  });
});

describe('details beyond loopback', () => {
  test('bound to 0.0.0.0, /status shows counts only (no names, paths, node ids); http.details: full shows them', async () => {
    const limited = await startTestServer({ http: { address: '0.0.0.0:0' } });
    const full = await startTestServer({ http: { address: '0.0.0.0:0', details: 'full' } });
    try {
      for (const s of [limited, full]) s.put('web', tls(fx.web1));
      const port = (s: TestServer) => s.httpAddress!.split(':').pop()!;
      const l = await send(`127.0.0.1:${port(limited)}`, 'GET', '/status');
      assert.equal(l.status, 200, l.body);
      assert.doesNotMatch(l.body, /web/);
      assert.equal((JSON.parse(l.body) as { secrets: number }).secrets, 1);
      const f = await send(`127.0.0.1:${port(full)}`, 'GET', '/status');
      assert.match(f.body, /"web"/);
    } finally {
      await limited.stop();
      await full.stop();
    }
  });
});

describe('loopback trust in Kubernetes', () => {
  test('with trustLoopback off the issuance controls refuse even a loopback caller', async () => {
    const controls = new FakeControls();
    const server = await startTestServer(
      { trustLoopback: false },
      { httpRoutes: new Map([[CONTROL_PREFIX, controlRoutes(controls, { trustLoopback: false })]]) },
    );
    try {
      const r = await send(server.httpAddress!, 'POST', '/issuance/renew/default/web', RENEW_HEADERS, '{}');
      assert.equal(r.status, 403);
      assert.match(r.body, /trustLoopback/);
      assert.equal(controls.renewals, 0);
    } finally {
      await server.stop();
    }
  });
});
