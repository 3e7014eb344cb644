// Which Gateway may use which Secret, from Gateways and ReferenceGrants as the API server
// would hand them over: the reducers and the index, without a cluster.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reduceGateway, reduceReferenceGrant } from '../../src/sources/kubernetes/gateway-api-objects.js';
import { GatewayReferences } from '../../src/sources/kubernetes/gateway-references.js';

const gateway = (ns: string, name: string, refs: Array<Record<string, unknown>>) =>
  reduceGateway({
    metadata: { name, namespace: ns, uid: `${ns}-${name}`, resourceVersion: '1' },
    spec: { listeners: [{ name: 'l', tls: { certificateRefs: refs } }] },
  });
const grant = (ns: string, name: string, from: Array<Record<string, unknown>>, to: Array<Record<string, unknown>>) =>
  reduceReferenceGrant({ metadata: { name, namespace: ns, uid: name, resourceVersion: '1' }, spec: { from, to } });
const GW = { group: 'gateway.networking.k8s.io', kind: 'Gateway' };

test('a same-namespace reference needs no grant; only core Secrets count', () => {
  const idx = new GatewayReferences();
  idx.setGateway(
    'edge/gw',
    gateway('edge', 'gw', [
      { name: 'a' },
      { kind: 'Secret', group: '', name: 'b' },
      { kind: 'ConfigMap', name: 'c' },
      { group: 'example.com', kind: 'Secret', name: 'd' },
    ]),
  );
  assert.ok(idx.gatewayMayUse('edge', 'gw', 'edge', 'a'));
  assert.ok(idx.gatewayMayUse('edge', 'gw', 'edge', 'b'));
  assert.ok(!idx.gatewayMayUse('edge', 'gw', 'edge', 'c'));
  assert.ok(!idx.gatewayMayUse('edge', 'gw', 'edge', 'd'));
  assert.ok(!idx.gatewayMayUse('edge', 'other', 'edge', 'a'), 'another Gateway of the namespace');
  assert.ok(idx.isReferenced('edge', 'a') && !idx.isReferenced('edge', 'c'));
});

test('across namespaces: only a grant in the Secret namespace, from Gateways of the caller namespace, to that Secret (or all)', () => {
  const idx = new GatewayReferences();
  let changes = 0;
  idx.onChange(() => changes++);
  idx.setGateway('edge/gw', gateway('edge', 'gw', [{ name: 's', namespace: 'certs' }]));
  const cases: Array<[string, ReturnType<typeof grant>, boolean]> = [
    ['grant in the Gateway namespace', grant('edge', 'g', [{ ...GW, namespace: 'edge' }], [{ group: '', kind: 'Secret' }]), false],
    ['from another namespace', grant('certs', 'g', [{ ...GW, namespace: 'other' }], [{ group: '', kind: 'Secret' }]), false],
    [
      'from HTTPRoutes',
      grant('certs', 'g', [{ group: GW.group, kind: 'HTTPRoute', namespace: 'edge' }], [{ group: '', kind: 'Secret' }]),
      false,
    ],
    ['to another Secret', grant('certs', 'g', [{ ...GW, namespace: 'edge' }], [{ group: '', kind: 'Secret', name: 't' }]), false],
    ['to ConfigMaps', grant('certs', 'g', [{ ...GW, namespace: 'edge' }], [{ group: '', kind: 'ConfigMap' }]), false],
    ['to that Secret', grant('certs', 'g', [{ ...GW, namespace: 'edge' }], [{ group: '', kind: 'Secret', name: 's' }]), true],
    ['to every Secret', grant('certs', 'g', [{ ...GW, namespace: 'edge' }], [{ group: '', kind: 'Secret' }]), true],
  ];
  for (const [what, g, allowed] of cases) {
    const key = `${g.meta.namespace}/${g.meta.name}`;
    idx.setGrant(key, g);
    assert.equal(idx.gatewayMayUse('edge', 'gw', 'certs', 's'), allowed, what);
    idx.setGrant(key, undefined);
    assert.equal(idx.gatewayMayUse('edge', 'gw', 'certs', 's'), false, `${what}, removed`);
  }
  assert.equal(changes, 1 + cases.length * 2, 'every change is heard');
});

test('reference counts: a Secret stays referenced while any Gateway names it', () => {
  const idx = new GatewayReferences();
  idx.setGateway('edge/a', gateway('edge', 'a', [{ name: 's' }]));
  idx.setGateway('edge/b', gateway('edge', 'b', [{ name: 's' }, { name: 's' }]));
  assert.deepEqual([...idx.setGateway('edge/a', undefined)], ['edge/s']);
  assert.ok(idx.isReferenced('edge', 's'));
  idx.setGateway('edge/b', gateway('edge', 'b', []));
  assert.ok(!idx.isReferenced('edge', 's'));
});
