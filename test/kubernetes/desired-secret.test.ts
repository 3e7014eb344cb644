// What the store should hold for a Kubernetes name, from the objects alone: a table of
// sentences, plus properties of the name scheme.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { configMapName, parseKubernetesName, secretName } from '../../src/kubernetes/kubernetes-names.js';
import { caForCacertName, caFromConfigMap, desiredForSecretName, tlsFromSecret } from '../../src/sources/kubernetes/desired-secret.js';
import { configMapReducer, reduceSecret, type SecretObject } from '../../src/sources/kubernetes/kube-objects.js';

const meta = (name: string) => ({ name, namespace: 'apps', uid: `uid-${name}`, resourceVersion: '7' });
const secret = (name: string, data: Record<string, string>, type = 'kubernetes.io/tls'): SecretObject => ({ meta: meta(name), type, data });

test('desired content of a name, from its objects', async (t) => {
  const cases: Array<[string, () => void]> = [
    [
      'a TLS Secret gives tls.crt + tls.key',
      () => {
        const d = tlsFromSecret(secret('web', { 'tls.crt': 'C', 'tls.key': 'K', 'ca.crt': 'A' }));
        assert.deepEqual(d.state === 'present' && d.material, { kind: 'tls_certificate', certificateChain: 'C', privateKey: 'K' });
      },
    ],
    [
      'cert + key is the other accepted pair',
      () => {
        const d = tlsFromSecret(secret('web', { cert: 'C', key: 'K' }, 'Opaque'));
        assert.equal(d.state === 'present' && d.material.kind, 'tls_certificate');
      },
    ],
    [
      'a TLS Secret with an empty key is invalid (MISSING_KEYS), naming the key only',
      () => {
        const d = tlsFromSecret(secret('web', { 'tls.crt': 'C', 'tls.key': '' }));
        assert.equal(d.state, 'invalid');
        assert.equal(d.state === 'invalid' && d.message, 'Secret has no non-empty tls.key');
      },
    ],
    [
      'an Opaque Secret with only a "key" is not a TLS Secret',
      () => {
        assert.equal(tlsFromSecret(secret('db', { key: 'x' }, 'Opaque')).state, 'absent');
      },
    ],
    ['no Secret, nothing', () => assert.equal(tlsFromSecret(undefined).state, 'absent')],
    [
      '-cacert falls back to ca.crt of the base Secret',
      () => {
        const d = caForCacertName(undefined, secret('web', { 'tls.crt': 'C', 'tls.key': 'K', 'ca.crt': 'A' }));
        assert.equal(d.state === 'present' && d.source.meta.name, 'web');
      },
    ],
    [
      '-cacert Secret wins over the base Secret, with ca.crt, cacert or tls.crt',
      () => {
        for (const key of ['ca.crt', 'cacert', 'tls.crt']) {
          const d = caForCacertName(secret('web-cacert', { [key]: 'B' }, 'Opaque'), secret('web', { 'ca.crt': 'A' }));
          assert.deepEqual(d.state === 'present' && d.material, { kind: 'validation_context', trustedCa: 'B' });
        }
      },
    ],
    [
      'a -cacert Secret without any CA key is invalid, not a fallback',
      () => {
        assert.equal(caForCacertName(secret('web-cacert', { other: 'x' }, 'Opaque'), secret('web', { 'ca.crt': 'A' })).state, 'invalid');
      },
    ],
    [
      'ca.crt is read only from kubernetes.io/tls and Opaque Secrets',
      () => {
        for (const type of ['kubernetes.io/tls', 'Opaque']) {
          assert.equal(caForCacertName(undefined, secret('web', { 'ca.crt': 'A' }, type)).state, 'present', type);
          assert.equal(caForCacertName(secret('web-cacert', { 'ca.crt': 'B' }, type), undefined).state, 'present', type);
        }
        for (const type of [
          'kubernetes.io/service-account-token',
          'bootstrap.kubernetes.io/token',
          'kubernetes.io/dockerconfigjson',
          'example.com/custom',
        ]) {
          assert.equal(caForCacertName(undefined, secret('web', { 'ca.crt': 'A' }, type)).state, 'absent', type);
          assert.equal(caForCacertName(secret('web-cacert', { 'ca.crt': 'B' }, type), undefined).state, 'absent', type);
        }
      },
    ],
    [
      'a base Secret without ca.crt gives no -cacert',
      () => {
        assert.equal(caForCacertName(undefined, secret('web', { 'tls.crt': 'C', 'tls.key': 'K' })).state, 'absent');
      },
    ],
    [
      'a ConfigMap takes the first configured key present',
      () => {
        const d = caFromConfigMap({ meta: meta('b'), data: { 'trust-bundle.pem': 'T' } }, ['ca.crt', 'trust-bundle.pem']);
        assert.deepEqual(d.state === 'present' && d.material, { kind: 'validation_context', trustedCa: 'T' });
        assert.equal(caFromConfigMap({ meta: meta('b'), data: {} }, ['ca.crt']).state, 'absent');
      },
    ],
    [
      'desiredForSecretName dispatches on the name',
      () => {
        const objs = new Map([['web', secret('web', { 'tls.crt': 'C', 'tls.key': 'K', 'ca.crt': 'A' })]]);
        const lookup = (_ns: string, n: string) => objs.get(n);
        const tlsName = parseKubernetesName('kubernetes://apps/web');
        const caName = parseKubernetesName('kubernetes://apps/web-cacert');
        assert.ok(tlsName?.scheme === 'kubernetes' && caName?.scheme === 'kubernetes');
        assert.equal(desiredForSecretName(tlsName, lookup).state, 'present');
        const ca = desiredForSecretName(caName, lookup);
        assert.equal(ca.state === 'present' && ca.material.kind, 'validation_context');
      },
    ],
    [
      'reducers keep only the keys that may be served',
      () => {
        const s = reduceSecret({
          metadata: { name: 'x', namespace: 'apps' },
          type: 'Opaque',
          data: { 'tls.crt': Buffer.from('C').toString('base64'), password: 'aHVudGVyMg==' },
        });
        assert.deepEqual(s.data, { 'tls.crt': 'C' });
        const c = configMapReducer(['ca.crt'])({
          metadata: { name: 'y', namespace: 'apps' },
          data: { 'ca.crt': 'A', other: 'z' },
          binaryData: { 'ca.crt': 'Qg==' },
        });
        assert.deepEqual(c.data, { 'ca.crt': 'A' });
      },
    ],
  ];
  for (const [name, fn] of cases) await t.test(name, fn);
});

test('Kubernetes names: format and parse agree; malformed names parse to nothing', () => {
  const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
  fc.assert(
    fc.property(label, label, (ns, name) => {
      const s = parseKubernetesName(secretName(ns, name));
      const isCa = name.endsWith('-cacert') && name.length > '-cacert'.length;
      assert.equal(s?.kind, isCa ? 'validation_context' : 'tls_certificate');
      assert.equal(s?.namespace, ns);
      const c = parseKubernetesName(configMapName(ns, name));
      assert.deepEqual(c, { scheme: 'configmap', kind: 'validation_context', namespace: ns, configMap: name });
    }),
  );
  for (const bad of [
    'kubernetes://',
    'kubernetes://apps',
    'kubernetes://apps/',
    'kubernetes://Apps/web',
    'kubernetes://apps/web/x',
    'configmap:///x',
    'file://apps/web',
    'web',
  ]) {
    assert.equal(parseKubernetesName(bad), undefined, bad);
  }
});
