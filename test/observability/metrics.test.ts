// What Prometheus scrapes: cert-manager style expiry gauges for the secrets the store
// holds (never for names clients ask for), build info, every counter present at zero,
// and the shipped alerting rules checked and unit-tested with promtool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { FakeEnvoy } from '../support/fake-envoy.js';
import { caBundle, eventually, makeFixtures, startTestServer, tls, type Fixtures, type TestServer } from '../support/test-server.js';

let server: TestServer;
let fx: Fixtures;

before(async () => {
  fx = makeFixtures();
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

async function scrape(): Promise<string> {
  return (await fetch(`http://${server.httpAddress}/metrics`)).text();
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  test('every counter has a series at zero before its first event (alerts see 0, not nothing)', async () => {
    const text = await scrape();
    assert.equal(sample(text, 'envoy_sds_nacks_total{protocol="sotw"}'), 0);
    assert.equal(sample(text, 'envoy_sds_nacks_total{protocol="delta"}'), 0);
    assert.equal(sample(text, 'envoy_sds_denied_total'), 0);
    assert.equal(sample(text, 'envoy_sds_secret_updates_total{source="file",outcome="rejected"}'), 0);
    assert.equal(sample(text, 'envoy_sds_bad_requests_total{reason="too_many_names"}'), 0);
    assert.equal(sample(text, 'envoy_sds_streams_open{protocol="ads"}'), 0);
  });

  test('build info names the version and the runtime', async () => {
    const text = await scrape();
    assert.match(
      text,
      new RegExp(`envoy_sds_build_info\\{version="\\d+\\.\\d+\\.\\d+[^"]*",node_version="${process.version.replace(/\./g, '\\.')}"\\} 1`),
    );
  });

  test('expiry and not-before gauges per stored secret, none for a name a client asks for', async () => {
    server.put('web', tls(fx.web1, fx.ca));
    server.put('web-cacert', caBundle(fx.ca));
    const envoy = new FakeEnvoy(server.grpcAddress!);
    try {
      const s = envoy.sotw();
      s.request({ names: ['no-such-secret-from-a-client'] });
      await eventually(
        async () => (await scrape()).includes('envoy_sds_certificate_expiration_timestamp_seconds{name="web"}'),
        5000,
        'web expiry series',
      );
      const text = await scrape();
      const leaf = new X509Certificate(fx.web1.certPem);
      const ca = new X509Certificate(fx.ca.certPem);
      assert.equal(
        sample(text, 'envoy_sds_certificate_expiration_timestamp_seconds{name="web"}'),
        Math.floor(Date.parse(leaf.validTo) / 1000),
      );
      assert.equal(
        sample(text, 'envoy_sds_certificate_not_before_timestamp_seconds{name="web"}'),
        Math.floor(Date.parse(leaf.validFrom) / 1000),
      );
      assert.equal(
        sample(text, 'envoy_sds_certificate_expiration_timestamp_seconds{name="web-cacert"}'),
        Math.floor(Date.parse(ca.validTo) / 1000),
      );
      assert.doesNotMatch(text, /no-such-secret-from-a-client/);
    } finally {
      envoy.close();
    }
  });
});

describe('alerting rules (deploy/prometheus)', () => {
  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  const missing = promtool.error !== undefined;
  const opts =
    missing && process.env['CI'] !== 'true' ? { skip: 'promtool not installed (Debian package prometheus; .ci/run installs it)' } : {};

  test('promtool check rules', opts, () => {
    const r = spawnSync('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yaml'], { encoding: 'utf8' });
    assert.equal(r.error, undefined, 'promtool is required (Debian package prometheus)');
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('promtool test rules: expiring, expired, NACKs, stale deliveries, rejected updates, failing issuance', opts, () => {
    const r = spawnSync('promtool', ['test', 'rules', 'deploy/prometheus/alerts.test.yaml'], { encoding: 'utf8' });
    assert.equal(r.error, undefined, 'promtool is required (Debian package prometheus)');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /SUCCESS/);
  });
});
