// The `issuance:` section: cert-manager's defaults, the example YAMLs (cert-manager's,
// with only the apiVersion changed), and errors that point at the offending field.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { parseGoDuration } from '../../src/issuance/duration.js';
import { parseIssuanceConfig } from '../../src/issuance/issuance-config.js';
import { V, tempDir } from './engine-support.js';

const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'issuance');

function parse(resources: unknown[], extra: Record<string, unknown> = {}) {
  return parseIssuanceConfig({ resources, ...extra }, { baseDir: process.cwd() });
}

function rejects(fn: () => unknown, field: string | RegExp, message: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    if (typeof field === 'string') assert.equal(err.field, field, err.message);
    else assert.match(err.field, field, err.message);
    assert.match(err.message, message);
    return;
  }
  assert.fail('expected a ConfigError');
}

const selfSigned = { apiVersion: V, kind: 'Issuer', metadata: { name: 'self' }, spec: { selfSigned: {} } };
// A self-signed certificate needs a subject (its issuer name): every fixture has one.
const cert = (spec: Record<string, unknown>, name = 'c') => ({
  apiVersion: V,
  kind: 'Certificate',
  metadata: { name },
  spec: { secretName: name, issuerRef: { name: 'self' }, subject: { organizations: ['Example'] }, ...spec },
});

describe('issuance config', () => {
  test("a Certificate gets cert-manager's defaults: 90 days, one third renewal, RSA 2048 PKCS#1, rotation Always", () => {
    const c = parse([selfSigned, cert({ dnsNames: ['a.example.com'] })]).certificates[0]!;
    assert.equal(c.id, 'default/c');
    assert.equal(c.spec.durationMs, 2160 * 3_600_000);
    assert.equal(c.spec.renewBefore, undefined);
    assert.deepEqual(c.spec.privateKey, { algorithm: 'RSA', size: 2048, encoding: 'PKCS1', rotationPolicy: 'Always' });
    assert.equal(c.spec.isCA, false);
    assert.equal(c.spec.usages, undefined);
    assert.deepEqual(c.spec.issuerRef, { name: 'self', kind: 'Issuer' });
  });

  test('the example YAMLs load as they are, from resourceFiles', () => {
    const cfg = parseIssuanceConfig(
      { resourceFiles: ['ca-chain.yaml', 'letsencrypt-staging.yaml', 'letsencrypt-production.yaml'].map((f) => join(FIXTURES, f)) },
      { baseDir: FIXTURES },
    );
    assert.deepEqual([...cfg.issuers.keys()].sort(), [
      'ClusterIssuer/letsencrypt-production',
      'ClusterIssuer/letsencrypt-staging',
      'ClusterIssuer/my-ca-issuer',
      'ClusterIssuer/selfsigned-issuer',
    ]);
    assert.deepEqual(
      cfg.certificates.map((c) => c.id),
      ['cert-manager/my-selfsigned-ca', 'default/web', 'payments/payments-client', 'default/example-com'],
    );
    const staging = cfg.issuers.get('ClusterIssuer/letsencrypt-staging')!;
    assert.equal(staging.secretNamespace, 'cert-manager');
    assert.ok(staging.spec.type === 'acme');
    const [dns, http] = staging.spec.acme.solvers;
    assert.ok(dns?.type === 'dns01' && http?.type === 'http01');
    assert.deepEqual(dns.rfc2136.nameserver, { host: '192.0.2.53', port: 53 });
    assert.equal(dns.rfc2136.tsigAlgorithm, 'hmac-sha256');
    assert.deepEqual(dns.rfc2136.tsigSecret, { secretRef: { name: 'tsig-secret', key: 'tsig-secret-key' } });
    assert.deepEqual(dns.selector?.dnsZones, ['example.com']);
    assert.deepEqual(http.selector?.dnsNames, ['www.example.com']);
    const web = cfg.certificates.find((c) => c.name === 'web')!;
    assert.deepEqual(web.spec.renewBefore, { ms: 360 * 3_600_000 });
    assert.deepEqual(cfg.certificates.find((c) => c.name === 'payments-client')!.spec.renewBefore, { percentage: 25 });
  });

  test('cert-manager YAML with its own apiVersion is refused with the one change to make', () => {
    const dir = tempDir('cm-');
    const file = join(dir, 'cm.yaml');
    writeFileSync(file, readFileSync(join(FIXTURES, 'ca-chain.yaml'), 'utf8').replaceAll('envoy-sds.io/v1alpha1', 'cert-manager.io/v1'));
    rejects(
      () => parseIssuanceConfig({ resourceFiles: [file] }, { baseDir: dir }),
      `${file} (document 1).apiVersion`,
      /must be envoy-sds\.io\/v1alpha1, got "cert-manager\.io\/v1" \(cert-manager YAML works here with apiVersion changed/,
    );
  });

  test('mistakes are reported with the path of the field', () => {
    rejects(() => parse([selfSigned, cert({ dnsNames: ['bad name'] })]), 'issuance.resources[1].spec.dnsNames[0]', /is not a DNS name/);
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], dnsNamez: [] })]),
      'issuance.resources[1].spec.dnsNamez',
      /unknown field/,
    );
    rejects(() => parse([selfSigned, cert({})]), 'issuance.resources[1].spec', /at least one of commonName, dnsNames/);
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], duration: '90d' })]),
      'issuance.resources[1].spec.duration',
      /not a duration \(Go syntax/,
    );
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], duration: '1h', renewBefore: '2h' })]),
      'issuance.resources[1].spec.renewBefore',
      /shorter than the duration/,
    );
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], renewBefore: '1h', renewBeforePercentage: 10 })]),
      'issuance.resources[1].spec',
      /at most one of renewBefore/,
    );
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], privateKey: { algorithm: 'ECDSA', size: 521 } })]),
      'issuance.resources[1].spec.privateKey.size',
      /not supported by Envoy/,
    );
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], privateKey: { algorithm: 'DSA' } })]),
      'issuance.resources[1].spec.privateKey.algorithm',
      /one of RSA, ECDSA, Ed25519/,
    );
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], usages: ['server auth', 'world domination'] })]),
      'issuance.resources[1].spec.usages',
      /unknown usage "world domination"/,
    );
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'], issuerRef: { name: 'nope' } })]),
      'Certificate default/c.spec.issuerRef',
      /Issuer "nope" in namespace default is not declared/,
    );
    rejects(
      () => parse([selfSigned, cert({ dnsNames: ['a.example.com'] }, 'c'), cert({ dnsNames: ['b.example.com'], secretName: 'c' }, 'd')]),
      'Certificate default/d.spec.secretName',
      /SDS name "c" is already used by Certificate default\/c/,
    );
    rejects(
      () =>
        parseIssuanceConfig(
          { resources: [selfSigned, cert({ dnsNames: ['a.example.com'] }, 'web')] },
          { baseDir: '.', reservedNames: ['web'] },
        ),
      'Certificate default/web.spec.secretName',
      /already used by secrets entry "web"/,
    );
    rejects(
      () => parse([{ apiVersion: V, kind: 'Issuer', metadata: { name: 'v' }, spec: { vault: {} } }]),
      'issuance.resources[0].spec.vault',
      /not supported by envoy-sds/,
    );
    rejects(
      () => parse([{ apiVersion: V, kind: 'Issuer', metadata: { name: 'x' }, spec: {} }]),
      'issuance.resources[0].spec',
      /exactly one of selfSigned, ca, acme/,
    );
    rejects(
      () => parse([{ apiVersion: V, kind: 'Issuer', metadata: { name: 'x' }, spec: { selfSigned: {}, restrictions: {} } }]),
      'issuance.resources[0].spec.restrictions',
      /unknown field/,
    );
    rejects(() => parse([selfSigned], { backoff: { initial: 'soon' } }), 'issuance.backoff.initial', /not a positive duration/);
  });

  test('ACME issuers: solvers, providers, TSIG secrets and what an ACME certificate may ask for', () => {
    const acme = (solvers: unknown[], extra: Record<string, unknown> = {}) => ({
      apiVersion: V,
      kind: 'ClusterIssuer',
      metadata: { name: 'le' },
      spec: { acme: { server: 'https://acme.example/dir', privateKeySecretRef: { name: 'le-key' }, solvers, ...extra } },
    });
    const leCert = (spec: Record<string, unknown>) => ({
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'x' },
      spec: { secretName: 'x', issuerRef: { name: 'le', kind: 'ClusterIssuer' }, ...spec },
    });
    rejects(
      () => parse([acme([{ dns01: { route53: {} } }])]),
      'issuance.resources[0].spec.acme.solvers[0].dns01.route53',
      /not supported by envoy-sds yet \(supported: rfc2136\)/,
    );
    rejects(
      () =>
        parse([
          acme([{ dns01: { rfc2136: { nameserver: '10.0.0.1', tsigKeyName: 'k', tsigAlgorithm: 'HMACMD5', tsigSecretFile: '/x' } } }]),
        ]),
      'issuance.resources[0].spec.acme.solvers[0].dns01.rfc2136.tsigAlgorithm',
      /HMACMD5 is deprecated/,
    );
    rejects(
      () => parse([acme([{ dns01: { rfc2136: { nameserver: '10.0.0.1', tsigKeyName: 'k' } } }])]),
      'issuance.resources[0].spec.acme.solvers[0].dns01.rfc2136',
      /tsigSecretSecretRef or tsigSecretFile/,
    );
    rejects(
      () => parse([acme([{ http01: {}, dns01: {} }])]),
      'issuance.resources[0].spec.acme.solvers[0]',
      /exactly one of http01 or dns01/,
    );
    rejects(
      () =>
        parse([
          acme([{ dns01: { cnameStrategy: 'Sideways', rfc2136: { nameserver: '10.0.0.1', tsigKeyName: 'k', tsigSecretFile: '/x' } } }]),
        ]),
      'issuance.resources[0].spec.acme.solvers[0].dns01.cnameStrategy',
      /one of None, Follow/,
    );
    const follow = parse([
      acme([{ dns01: { cnameStrategy: 'Follow', rfc2136: { nameserver: '10.0.0.1', tsigKeyName: 'k', tsigSecretFile: '/x' } } }]),
    ]).issuers.get('ClusterIssuer/le');
    assert.ok(
      follow?.spec.type === 'acme' &&
        follow.spec.acme.solvers[0]?.type === 'dns01' &&
        follow.spec.acme.solvers[0].cnameStrategy === 'Follow',
    );
    rejects(
      () => parse([acme([{ http01: {} }]), leCert({ commonName: 'a.example.com', dnsNames: ['a.example.com'], isCA: true })]),
      'Certificate default/x.spec.isCA',
      /cannot issue CA certificates/,
    );
    rejects(
      () => parse([acme([{ http01: {} }]), leCert({ dnsNames: ['a.example.com'], ipAddresses: ['10.0.0.1'] })]),
      'Certificate default/x.spec',
      /DNS names only/,
    );
    rejects(
      () => parse([acme([{ http01: {} }]), leCert({ commonName: 'b.example.com', dnsNames: ['a.example.com'] })]),
      'Certificate default/x.spec.commonName',
      /must also be listed in dnsNames/,
    );
    rejects(
      () => parse([acme([{ http01: {} }], { caBundleFile: '/nonexistent/ca.pem' })]),
      'issuance.resources[0].spec.acme.caBundleFile',
      /cannot read \/nonexistent\/ca\.pem \(ENOENT\)/,
    );
    const ok = parse([
      acme([
        {
          dns01: {
            rfc2136: { nameserver: '[2001:db8::53]:5353', tsigKeyName: 'k', tsigAlgorithm: 'HMACSHA512', tsigSecretFile: 'tsig.key' },
          },
        },
      ]),
    ]);
    const solver = (ok.issuers.get('ClusterIssuer/le')!.spec as { acme: { solvers: Array<{ rfc2136: unknown }> } }).acme.solvers[0]!;
    assert.deepEqual(solver.rfc2136, {
      nameserver: { host: '2001:db8::53', port: 5353 },
      tsigKeyName: 'k',
      tsigAlgorithm: 'hmac-sha512',
      tsigSecret: { file: join(process.cwd(), 'tsig.key') },
    });
  });

  test('Go durations parse as cert-manager writes them', () => {
    assert.equal(parseGoDuration('2160h'), 2160 * 3_600_000);
    assert.equal(parseGoDuration('720h0m0s'), 720 * 3_600_000);
    assert.equal(parseGoDuration('1h30m'), 90 * 60_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('250ms'), 250);
    assert.equal(parseGoDuration('90d'), undefined);
    assert.equal(parseGoDuration('5 m'), undefined);
    assert.equal(parseGoDuration(''), undefined);
  });
  test('persistence: files without a kubernetes section, kubernetes with one (leader election on by default)', () => {
    const k8s = (extra: Record<string, unknown>) =>
      parseIssuanceConfig({ resources: [selfSigned], ...extra }, { baseDir: process.cwd(), kubernetes: true });
    assert.equal(parse([selfSigned]).persistence, 'files');
    assert.equal(parse([selfSigned]).leaderElection, undefined);
    const auto = k8s({ leaderElection: { namespace: 'envoy-sds' } });
    assert.equal(auto.persistence, 'kubernetes');
    assert.deepEqual(auto.leaderElection, {
      namespace: 'envoy-sds',
      leaseName: 'envoy-sds-issuance',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
    });
    assert.equal(k8s({ leaderElection: { enabled: false } }).leaderElection, undefined);
    assert.equal(k8s({ persistence: 'files' }).persistence, 'files');
    const short = k8s({ leaderElection: { namespace: 'n', identity: 'pod-a', leaseDuration: '2s', renewDeadline: '1s' } }).leaderElection;
    assert.deepEqual(short, {
      namespace: 'n',
      leaseName: 'envoy-sds-issuance',
      identity: 'pod-a',
      leaseDurationMs: 2000,
      renewDeadlineMs: 1000,
    });
    rejects(() => parse([selfSigned], { persistence: 'kubernetes' }), 'issuance.persistence', /needs a `kubernetes:` section/);
    rejects(() => parse([selfSigned], { persistence: 'etcd' }), 'issuance.persistence', /must be "files" or "kubernetes"/);
    rejects(() => parse([selfSigned], { leaderElection: {} }), 'issuance.leaderElection', /needs persistence: kubernetes/);
    rejects(
      () => k8s({ leaderElection: { leaseDuration: '2s', renewDeadline: '2s' } }),
      'issuance.leaderElection.renewDeadline',
      /shorter than leaseDuration/,
    );
    rejects(() => k8s({ leaderElection: { leaseDuration: '1500ms' } }), 'issuance.leaderElection.leaseDuration', /whole seconds/);
  });
});
