// deploy/crds/ and the Helm chart's crds/ are generated from the schemas the engine
// checks resources with (`npm run crds`): a schema change without regenerating fails here.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { customResourceDefinitions } from '../../src/issuance/schema/custom-resource-definitions.js';

type Node = { [key: string]: unknown };

test('the committed CRDs are what the schemas generate (run `npm run crds` after a schema change)', () => {
  const generated = customResourceDefinitions();
  for (const dir of ['deploy/crds', 'deploy/helm/envoy-sds/crds']) {
    assert.deepEqual(readdirSync(dir).sort(), [...generated.keys()].sort(), dir);
    for (const [file, text] of generated)
      assert.equal(readFileSync(`${dir}/${file}`, 'utf8'), text, `${dir}/${file} differs from the generated one: run npm run crds`);
  }
});

test('the CRD schemas are structural: every node typed (or preserved), no additionalProperties beside properties', () => {
  const problems: string[] = [];
  const walk = (n: Node, at: string): void => {
    if (n['type'] === undefined && n['x-kubernetes-preserve-unknown-fields'] !== true) problems.push(`${at}: no type`);
    if (n['properties'] !== undefined && n['additionalProperties'] !== undefined)
      problems.push(`${at}: additionalProperties beside properties`);
    for (const k of ['$schema', '$ref', '$defs', 'anyOf', 'oneOf', 'allOf', 'const']) if (k in n) problems.push(`${at}: ${k}`);
    for (const [k, v] of Object.entries((n['properties'] ?? {}) as Record<string, Node>)) walk(v, `${at}.${k}`);
    if (n['items'] !== undefined) walk(n['items'] as Node, `${at}[]`);
    if (typeof n['additionalProperties'] === 'object') walk(n['additionalProperties'] as Node, `${at}{}`);
  };
  for (const [file, text] of customResourceDefinitions()) {
    const crd = parse(text) as { spec: { versions: Array<{ schema: { openAPIV3Schema: Node } }> } };
    walk(crd.spec.versions[0]!.schema.openAPIV3Schema, file);
  }
  assert.deepEqual(problems, []);
});

test('defaults and enums are carried: privateKey algorithm RSA, issuerRef kind Issuer', () => {
  const crd = parse(customResourceDefinitions().get('certificates.yaml')!) as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: Node } }> };
  };
  const spec = (crd.spec.versions[0]!.schema.openAPIV3Schema['properties'] as Record<string, Node>)['spec']!;
  const props = spec['properties'] as Record<string, Node>;
  const key = (props['privateKey']!['properties'] as Record<string, Node>)['algorithm']!;
  assert.equal(key['default'], 'RSA');
  assert.deepEqual(key['enum'], ['RSA', 'ECDSA', 'Ed25519']);
  assert.equal((props['issuerRef']!['properties'] as Record<string, Node>)['kind']!['default'], 'Issuer');
  assert.ok((spec['x-kubernetes-validations'] as unknown[]).length > 0, 'cross-field rules as CEL');
});
