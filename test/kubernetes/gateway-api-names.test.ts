// The names Gateway API objects, ClusterTrustBundles and sidecar mode add: what parses,
// what is refused, and which Secret each alias stands for (a CA's key withheld under one
// name is withheld under all).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  backendTlsPolicyName,
  clusterTrustBundleSignerName,
  gatewaySecretName,
  isGatewayApiScheme,
  parseGatewayApiName,
} from '../../src/kubernetes/gateway-api-names.js';
import { servedSecretName } from '../../src/kubernetes/secret-aliases.js';
import { sidecarAliases, sidecarTarget } from '../../src/kubernetes/sidecar-names.js';

test('well-formed names parse to their parts', () => {
  assert.deepEqual(parseGatewayApiName('kubernetes-gateway://edge/web-tls'), {
    scheme: 'kubernetes-gateway',
    kind: 'tls_certificate',
    namespace: 'edge',
    secret: 'web-tls',
  });
  assert.deepEqual(parseGatewayApiName('backendtlspolicy://apps/backend'), {
    scheme: 'backendtlspolicy',
    kind: 'validation_context',
    namespace: 'apps',
    policy: 'backend',
  });
  assert.deepEqual(parseGatewayApiName('clustertrustbundle://example.com:signer:a'), {
    scheme: 'clustertrustbundle',
    kind: 'validation_context',
    bundle: 'example.com:signer:a',
  });
  assert.deepEqual(parseGatewayApiName('clustertrustbundle-signer://example.com/signer?tier=prod'), {
    scheme: 'clustertrustbundle-signer',
    kind: 'validation_context',
    signerName: 'example.com/signer',
    labels: { tier: 'prod' },
  });
});

test('malformed names are refused (and still belong to the schemes: no local rule can grant them)', () => {
  for (const name of [
    'kubernetes-gateway://edge',
    'kubernetes-gateway:///web',
    'kubernetes-gateway://Edge/web',
    'kubernetes-gateway://edge/web/x',
    'backendtlspolicy://apps/',
    'clustertrustbundle://',
    'clustertrustbundle://a/b',
    'clustertrustbundle-signer://no-slash',
    'clustertrustbundle-signer://example.com/s?tier',
    'clustertrustbundle-signer://example.com/s?a=1&b=2',
    'clustertrustbundle-signer://example.com/s?a=b c',
  ]) {
    assert.equal(parseGatewayApiName(name), undefined, name);
    assert.ok(isGatewayApiScheme(name), name);
  }
  assert.equal(isGatewayApiScheme('kubernetes://edge/web'), false);
});

test('names built from parts parse back to them', () => {
  const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
  fc.assert(
    fc.property(label, label, (ns, name) => {
      const g = parseGatewayApiName(gatewaySecretName(ns, name));
      const p = parseGatewayApiName(backendTlsPolicyName(ns, name));
      return (
        g?.scheme === 'kubernetes-gateway' &&
        g.namespace === ns &&
        g.secret === name &&
        p?.scheme === 'backendtlspolicy' &&
        p.policy === name
      );
    }),
  );
  const signer = clusterTrustBundleSignerName('example.com/roots', ['tier', 'prod']);
  assert.deepEqual(parseGatewayApiName(signer), {
    scheme: 'clustertrustbundle-signer',
    kind: 'validation_context',
    signerName: 'example.com/roots',
    labels: { tier: 'prod' },
  });
});

test('sidecar names: sds://<secret> is the pod namespace, sds://<ns>/<secret> any; aliases invert it', () => {
  assert.equal(sidecarTarget('sds://web-tls', 'edge'), 'kubernetes://edge/web-tls');
  assert.equal(sidecarTarget('sds://apps/web-tls-cacert', 'edge'), 'kubernetes://apps/web-tls-cacert');
  for (const bad of ['sds://', 'sds://a/b/c', 'sds://UP', 'kubernetes://edge/web'])
    assert.equal(sidecarTarget(bad, 'edge'), undefined, bad);
  assert.deepEqual(sidecarAliases('kubernetes://edge/web-tls', 'edge'), ['sds://edge/web-tls', 'sds://web-tls']);
  assert.deepEqual(sidecarAliases('kubernetes://apps/web-tls', 'edge'), ['sds://apps/web-tls']);
  assert.deepEqual(sidecarAliases('configmap://edge/ca', 'edge'), []);
  for (const alias of sidecarAliases('kubernetes://edge/web-tls-cacert', 'edge'))
    assert.equal(sidecarTarget(alias, 'edge'), 'kubernetes://edge/web-tls-cacert');
});

test('every alias of a Secret names that Secret, for withholding a CA key', () => {
  assert.equal(servedSecretName('kubernetes-gateway://edge/ca-key', undefined), 'kubernetes://edge/ca-key');
  assert.equal(servedSecretName('sds://ca-key', 'edge'), 'kubernetes://edge/ca-key');
  assert.equal(servedSecretName('sds://ca-key', undefined), undefined, 'sds:// is a local name outside sidecar mode');
  assert.equal(servedSecretName('backendtlspolicy://edge/p', 'edge'), undefined);
});
