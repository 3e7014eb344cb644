// The status page at `/`, loaded in headless Chromium as a person would see it: the
// secrets with expiry, the gateways with their delivery state and NACK messages (shown
// as text, never run), no sideways scrolling on a 375 px phone, a screenshot kept.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { ChromiumNotFoundError, HeadlessPage } from '../support/headless-chromium.js';
import { makeLeaf } from '../support/openssl-certs.js';
import { eventually, makeFixtures, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

const OUT = resolve(process.env['TEST_OUTPUT_DIR'] ?? 'test-results');
const HOSTILE_NACK = '<script>alert(1)</script> & "quoted" <b>bold</b>';

let server: TestServer;
let fx: Fixtures;
const envoys: FakeEnvoy[] = [];

before(async () => {
  fx = makeFixtures();
  server = await startTestServer();
  server.put('kubernetes://apps/web-tls', tls(fx.web1, fx.ca));
  server.put(
    'expiring-soon-with-a-rather-long-secret-name-that-must-wrap-on-phones',
    tls(makeLeaf(fx.ca, ['soon.example.com'], { days: 5 })),
  );
  server.put('web-cacert', { kind: 'validation_context', trustedCa: fx.ca.certPem });
  const gw = (id: string) => {
    const e = new FakeEnvoy(server.grpcAddress!, { node: { id, cluster: 'edge-gateways' } });
    envoys.push(e);
    return e.sotw();
  };
  const ok = gw('gateway-7f9c8d-abcde');
  ok.request({ names: ['kubernetes://apps/web-tls'] });
  ok.ack(await ok.response());
  const bad = gw('gateway-7f9c8d-xyz12');
  bad.request({ names: ['kubernetes://apps/web-tls'] });
  bad.nack(await bad.response(), HOSTILE_NACK);
  await eventually(
    async () => ((await (await fetch(`http://${server.httpAddress}/delivery?state=NACKED`)).json()) as { total: number }).total === 1,
    5000,
    'NACK recorded',
  );
});
after(async () => {
  for (const e of envoys) e.close();
  await server.stop();
});

async function openPage(t: { skip(msg: string): void }, width: number): Promise<HeadlessPage | undefined> {
  try {
    return await HeadlessPage.open(width, 800);
  } catch (err) {
    if (err instanceof ChromiumNotFoundError && process.env['CI'] !== 'true') {
      t.skip(err.message);
      return undefined;
    }
    throw err;
  }
}

describe('status page', () => {
  test('served as HTML with a CSP that allows no script', async () => {
    const res = await fetch(`http://${server.httpAddress}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script/i, 'the NACK message is escaped');
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  for (const width of [375, 1280]) {
    test(`rendered in Chromium at ${width} px: secrets, expiry, gateways, NACKs; nothing scrolls sideways`, async (t) => {
      const page = await openPage(t, width);
      if (!page) return;
      try {
        await page.goto(`http://${server.httpAddress}/`);
        const text = await page.evaluate<string>('document.body.innerText');
        for (const s of [
          'Secrets',
          'Gateways',
          'kubernetes://apps/web-tls',
          'web-cacert',
          'gateway-7f9c8d-abcde',
          'gateway-7f9c8d-xyz12',
          'SYNCED',
          'NACKED',
          HOSTILE_NACK,
        ]) {
          assert.ok(text.includes(s), `the page shows ${s}`);
        }
        assert.equal(await page.evaluate<number>('document.scripts.length'), 0, 'no script ran or exists');
        const soon = await page.evaluate<string>("[...document.querySelectorAll('.days-bad')].map(e => e.textContent).join(',')");
        assert.match(soon, /\b[45] d\b/, 'a certificate with days left is coloured as urgent');
        const scrollWidth = await page.evaluate<number>('document.documentElement.scrollWidth');
        assert.ok(scrollWidth <= width, `scrollWidth ${scrollWidth} <= ${width}`);
        mkdirSync(OUT, { recursive: true });
        const file = join(OUT, `status-page-${width}.png`);
        writeFileSync(file, await page.screenshot());
        t.diagnostic(`screenshot: ${file}`);
      } finally {
        page.close();
      }
    });
  }
});
