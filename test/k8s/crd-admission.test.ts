// The generated CRDs on a real kube-apiserver: invalid Certificates and Issuers are
// refused at admission with the reason the engine gives (CEL x-kubernetes-validations,
// patterns and enums; no webhook), and the sample resources are accepted.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { ConfigError } from '../../src/config/config-error.js';
import { parseIssuanceConfig } from '../../src/issuance/issuance-config.js';
import { KubeApiError } from '../../src/kubernetes/kube-errors.js';
import { V } from '../issuance/engine-support.js';
import { installCrds } from './issuance-resources.js';
import { clusterWithAdmin } from './kube-test-env.js';

const cert = (spec: Record<string, unknown>) => ({
  apiVersion: V,
  kind: 'Certificate',
  metadata: { name: 'c' },
  spec: { secretName: 'c', issuerRef: { name: 'self' }, ...spec },
});
const issuer = (spec: Record<string, unknown>) => ({ apiVersion: V, kind: 'Issuer', metadata: { name: 'i' }, spec });
const rfc = { nameserver: '10.0.0.53', tsigKeyName: 'k', tsigSecretSecretRef: { name: 'tsig', key: 'k' } };
const acme = (solvers: unknown[]) =>
  issuer({ acme: { server: 'https://acme.example/dir', privateKeySecretRef: { name: 'acct' }, solvers } });

/** An invalid object and what both the API server and the engine say about it. */
const INVALID: Array<[string, Record<string, unknown>, RegExp]> = [
  ['a Certificate that names nothing', cert({}), /at least one of commonName, dnsNames, ipAddresses, uris or emailAddresses must be set/],
  [
    'renewBefore not shorter than the duration',
    cert({ dnsNames: ['a.example.com'], duration: '1h', renewBefore: '2h' }),
    /must be positive and shorter than the duration/,
  ],
  [
    'renewBefore and renewBeforePercentage',
    cert({ dnsNames: ['a.example.com'], renewBefore: '1h', renewBeforePercentage: 10 }),
    /set at most one of renewBefore and renewBeforePercentage/,
  ],
  [
    'an ECDSA P-521 key',
    cert({ dnsNames: ['a.example.com'], privateKey: { algorithm: 'ECDSA', size: 521 } }),
    /ECDSA P-521 is not supported by Envoy/,
  ],
  [
    'an RSA key of 1024 bits',
    cert({ dnsNames: ['a.example.com'], privateKey: { size: 1024 } }),
    /RSA keys must be 2048, 3072 or 4096 bits/,
  ],
  ['a CA without a subject', cert({ dnsNames: ['a.example.com'], isCA: true }), /a CA certificate needs a subject/],
  ['literalSubject', cert({ dnsNames: ['a.example.com'], literalSubject: 'CN=x' }), /not supported by envoy-sds/],
  ['an issuer of no type', issuer({}), /set exactly one of selfSigned, ca, acme/],
  ['an issuer of two types', issuer({ selfSigned: {}, ca: { secretName: 'root' } }), /set exactly one of selfSigned, ca, acme/],
  ['a Vault issuer', issuer({ vault: { server: 'https://vault' } }), /the vault issuer is not supported by envoy-sds/],
  ['a solver of two kinds', acme([{ http01: {}, dns01: { rfc2136: rfc } }]), /set exactly one of http01 or dns01/],
  [
    'a Route 53 solver',
    acme([{ dns01: { route53: { region: 'eu-west-1' }, rfc2136: rfc } }]),
    /this DNS provider is not supported by envoy-sds yet/,
  ],
  [
    'an RFC 2136 solver without its TSIG secret',
    acme([{ dns01: { rfc2136: { nameserver: '10.0.0.53', tsigKeyName: 'k' } } }]),
    /tsigSecretSecretRef or tsigSecretFile/,
  ],
];

/** Refused at admission with these shapes' own words (Kubernetes words its pattern and enum checks). */
const INVALID_SHAPE: Array<[string, Record<string, unknown>, RegExp]> = [
  ['a duration in days', cert({ dnsNames: ['a.example.com'], duration: '90d' }), /spec\.duration/],
  ['a DNS name with a space', cert({ dnsNames: ['bad name'] }), /spec\.dnsNames\[0\]/],
  ['an unknown issuerRef kind', cert({ dnsNames: ['a.example.com'], issuerRef: { name: 'x', kind: 'Vault' } }), /spec\.issuerRef\.kind/],
];

function collection(o: Record<string, unknown>, ns: string): string {
  return o['kind'] === 'Certificate'
    ? `/apis/envoy-sds.io/v1alpha1/namespaces/${ns}/certificates`
    : `/apis/envoy-sds.io/v1alpha1/namespaces/${ns}/issuers`;
}

describe('CRD admission', () => {
  test('invalid objects are refused by the API server with the reason the engine gives; the samples are accepted', async (t) => {
    const env = await clusterWithAdmin(t);
    if (!env) return;
    const { admin } = env;
    await installCrds(admin);
    const ns = await admin.namespace('crd');
    const self = { apiVersion: V, kind: 'Issuer', metadata: { name: 'self' }, spec: { selfSigned: {} } };

    for (const [what, obj, reason] of [...INVALID, ...INVALID_SHAPE]) {
      const refused = await admin.client.request('POST', collection(obj, ns), { body: obj, query: { dryRun: 'All' } }).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(refused instanceof KubeApiError, `${what}: accepted by the API server`);
      assert.equal(refused.status, 422, `${what}: ${refused.message}`);
      assert.match(refused.message, reason, what);
    }
    // The engine refuses the same objects, for the same reasons.
    for (const [what, obj, reason] of INVALID) {
      assert.throws(
        () => parseIssuanceConfig({ resources: [self, obj] }, { baseDir: '.' }),
        (err: unknown) => err instanceof ConfigError && reason.test(err.message),
        what,
      );
    }

    // The sample resources pass admission as they are (defaults filled in by the API server).
    const samples = parseAllDocuments(readFileSync('test/fixtures/issuance/custom-resources.yaml', 'utf8')).map(
      (d) => d.toJS() as Record<string, unknown>,
    );
    for (const o of samples) {
      const meta = o['metadata'] as { namespace?: string; name: string };
      const path =
        o['kind'] === 'ClusterIssuer'
          ? '/apis/envoy-sds.io/v1alpha1/clusterissuers'
          : `/apis/envoy-sds.io/v1alpha1/namespaces/${meta.namespace ?? 'default'}/${o['kind'] === 'Certificate' ? 'certificates' : 'issuers'}`;
      await admin.client.request('POST', path, { body: o, query: { dryRun: 'All' } }).catch((err: unknown) => {
        if (err instanceof KubeApiError && err.status === 404) return; // the sample's namespace does not exist here
        throw new Error(`${String(o['kind'])} ${meta.name}: ${(err as Error).message}`);
      });
    }
    const created = await admin.client.request<{ spec: { privateKey?: { algorithm?: string }; issuerRef: { kind?: string } } }>(
      'POST',
      collection(cert({ dnsNames: ['a.example.com'], privateKey: {} }), ns),
      {
        body: cert({ dnsNames: ['a.example.com'], privateKey: {} }),
      },
    );
    assert.equal(created.spec.issuerRef.kind, 'Issuer', 'default from the schema');
    assert.equal(created.spec.privateKey?.algorithm, 'RSA', 'default from the schema');
  });
});
