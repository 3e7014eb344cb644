// The Gateway API switches of `kubernetes:` and `issuance.shims`: defaults off, wrong
// values refused naming the field, sidecar mode only with a Unix socket.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { parseKubernetesConfig } from '../../src/config/kubernetes-config.js';
import { parseConfig } from '../../src/config/server-config.js';
import { parseSections } from '../../src/main.js';

const refuses = (fn: () => unknown, field: string): void => {
  assert.throws(fn, (err: unknown) => err instanceof ConfigError && err.field === field, field);
};

describe('Gateway API config', () => {
  test('off unless set; true turns each on', () => {
    const off = parseKubernetesConfig({});
    assert.equal(off.gatewayApi, false);
    assert.equal(off.clusterTrustBundles, false);
    assert.equal(off.sidecar, undefined);
    const on = parseKubernetesConfig({ gatewayApi: true, clusterTrustBundles: true, sidecar: { namespace: 'edge' } });
    assert.deepEqual([on.gatewayApi, on.clusterTrustBundles], [true, true]);
    assert.deepEqual(on.sidecar, { tokenFile: '/var/run/secrets/envoy-sds/token', namespace: 'edge' });
  });

  test('wrong values are refused naming the field', () => {
    refuses(() => parseKubernetesConfig({ gatewayApi: 'yes' }), 'kubernetes.gatewayApi');
    refuses(() => parseKubernetesConfig({ clusterTrustBundles: 1 }), 'kubernetes.clusterTrustBundles');
    refuses(() => parseKubernetesConfig({ sidecar: { socket: '/x' } }), 'kubernetes.sidecar.socket');
    refuses(() => parseKubernetesConfig({ sidecar: { tokenFile: '' } }), 'kubernetes.sidecar.tokenFile');
  });

  test('sidecar mode needs the Unix socket it serves the pod on', () => {
    refuses(() => parseSections(parseConfig({ kubernetes: { sidecar: { namespace: 'edge' } } }, '/')), 'kubernetes.sidecar');
    assert.ok(
      parseSections(parseConfig({ grpc: { unix: { path: '/tmp/sds.sock' } }, kubernetes: { sidecar: { namespace: 'edge' } } }, '/'))
        .kubernetes?.sidecar,
    );
  });

  test('shims need custom-resource issuance', () => {
    refuses(() => parseSections(parseConfig({ kubernetes: {}, issuance: { shims: { gateways: true } } }, '/')), 'issuance.shims');
    refuses(
      () => parseSections(parseConfig({ kubernetes: {}, issuance: { customResources: true, shims: { ingresses: 'yes' } } }, '/')),
      'issuance.shims.ingresses',
    );
    const ok = parseSections(parseConfig({ kubernetes: {}, issuance: { customResources: true, shims: { gateways: true } } }, '/'));
    assert.deepEqual(ok.issuance?.shims, { gateways: true, ingresses: false, certManagerAnnotations: false });
  });
});
