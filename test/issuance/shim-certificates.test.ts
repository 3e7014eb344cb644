// gateway-shim and ingress-shim as pure functions: which Certificates an object asks for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredCertificates, reduceShimOwner, shimIssuer } from '../../src/issuance/shims/shim-certificates.js';

const meta = (annotations: Record<string, string>) => ({ name: 'o', namespace: 'ns', uid: 'u-1', annotations });
const gateway = (annotations: Record<string, string>, listeners: unknown[]) =>
  reduceShimOwner('Gateway', { metadata: meta(annotations), spec: { listeners } });
const https = (hostname: string | undefined, refs: unknown[], mode?: string) => ({
  name: 'l',
  protocol: 'HTTPS',
  port: 443,
  ...(hostname ? { hostname } : {}),
  tls: { ...(mode ? { mode } : {}), certificateRefs: refs },
});

test('issuer annotations: ours first; cert-manager only when asked', () => {
  const o = (a: Record<string, string>) => reduceShimOwner('Ingress', { metadata: meta(a), spec: {} });
  assert.deepEqual(shimIssuer(o({ 'envoy-sds.io/issuer': 'ca' }), false), { kind: 'Issuer', name: 'ca' });
  assert.deepEqual(shimIssuer(o({ 'envoy-sds.io/cluster-issuer': 'root' }), false), { kind: 'ClusterIssuer', name: 'root' });
  assert.equal(shimIssuer(o({ 'cert-manager.io/issuer': 'ca' }), false), undefined);
  assert.deepEqual(shimIssuer(o({ 'cert-manager.io/cluster-issuer': 'root' }), true), { kind: 'ClusterIssuer', name: 'root' });
  assert.deepEqual(shimIssuer(o({ 'cert-manager.io/issuer': 'theirs', 'envoy-sds.io/issuer': 'ours' }), true), {
    kind: 'Issuer',
    name: 'ours',
  });
});

test('Gateway: one Certificate per Secret of its namespace, hostnames of Terminate listeners merged', () => {
  const owner = gateway({ 'envoy-sds.io/issuer': 'ca' }, [
    https('a.example', [{ name: 's' }]),
    https('b.example', [{ name: 's' }, { name: 't' }]),
    https(undefined, [{ name: 's' }]),
    https('p.example', [{ name: 'p' }], 'Passthrough'),
    https('x.example', [{ name: 'x', namespace: 'elsewhere' }]),
    https('c.example', [{ name: 'cm', kind: 'ConfigMap' }]),
  ]);
  const certs = desiredCertificates(owner, false).map((c) => [
    (c['metadata'] as { name: string }).name,
    (c['spec'] as { dnsNames: string[] }).dnsNames,
  ]);
  assert.deepEqual(certs, [
    ['s', ['a.example', 'b.example']],
    ['t', ['b.example']],
  ]);
  const first = desiredCertificates(owner, false)[0]!;
  assert.deepEqual((first['metadata'] as { ownerReferences: unknown[] }).ownerReferences, [
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'o', uid: 'u-1', controller: true, blockOwnerDeletion: true },
  ]);
  assert.deepEqual((first['metadata'] as { labels: unknown }).labels, { 'envoy-sds.io/shim-owner-uid': 'u-1' });
});

test('Ingress: one Certificate per TLS entry with hosts; none without an issuer annotation', () => {
  const spec = { tls: [{ hosts: ['a.example', 'www.a.example'], secretName: 'a' }, { secretName: 'nohosts' }, { hosts: ['b.example'] }] };
  const owner = reduceShimOwner('Ingress', { metadata: meta({ 'envoy-sds.io/cluster-issuer': 'root' }), spec });
  const certs = desiredCertificates(owner, false);
  assert.deepEqual(
    certs.map((c) => (c['spec'] as { dnsNames: string[] }).dnsNames),
    [['a.example', 'www.a.example']],
  );
  assert.deepEqual((certs[0]!['spec'] as { issuerRef: unknown }).issuerRef, { name: 'root', kind: 'ClusterIssuer', group: 'envoy-sds.io' });
  assert.deepEqual(desiredCertificates(reduceShimOwner('Ingress', { metadata: meta({}), spec }), false), []);
});

test('bounded: one object asks for at most 64 Certificates of at most 100 names', () => {
  const listeners = Array.from({ length: 200 }, (_, i) => https(`h${i}.example`, [{ name: `s${i % 80}` }, { name: 'big' }]));
  const certs = desiredCertificates(gateway({ 'envoy-sds.io/issuer': 'ca' }, listeners), false);
  assert.equal(certs.length, 64);
  assert.equal(
    (certs.find((c) => (c['metadata'] as { name: string }).name === 'big')!['spec'] as { dnsNames: string[] }).dnsNames.length,
    100,
  );
});
