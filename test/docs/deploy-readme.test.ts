// deploy/README.md says what a new user needs, and its compatibility table names the
// versions the tests really use (the build scripts and package.json own them).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const readme = readFileSync('deploy/README.md', 'utf8');
const section = (heading: string): string => {
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `deploy/README.md has "${heading}"`);
  const next = readme.slice(start + heading.length + 2).search(/\n#{1,3} /);
  return next < 0 ? readme.slice(start) : readme.slice(start, start + heading.length + 2 + next);
};
const pinned = (file: string, re: RegExp): string => {
  const m = re.exec(readFileSync(file, 'utf8'));
  assert.ok(m?.[1], `${file} pins a version (${re})`);
  return m[1];
};

describe('deploy/README.md', () => {
  it('orders the steps from an empty cluster to a gateway serving TLS, naming files that exist', () => {
    const steps = section('## From an empty cluster to a gateway serving TLS');
    const numbered = [...steps.matchAll(/^(\d+)\. \*\*/gm)].map((m) => Number(m[1]));
    assert.deepEqual(
      numbered,
      numbered.map((_n, i) => i + 1),
      'numbered 1..n',
    );
    assert.ok(numbered.length >= 6);
    // The server's certificate and the CA ConfigMap come before the parts that need them.
    const at = (s: string): number => steps.indexOf(s);
    assert.ok(at('envoy-sds-tls') < at('helm install'), "the server's certificate before the server");
    assert.ok(at('envoy-sds-ca') < at('deploy/gateway/deployment.yaml'), 'the CA ConfigMap before the gateway');
    for (const file of new Set([...readme.matchAll(/`(deploy\/[\w./-]+\.yaml|envoy-config\/[\w.-]+\.yaml)`/g)].map((m) => m[1]!))) {
      assert.ok(existsSync(file), `${file} exists`);
    }
  });

  it('has the guides, an architecture overview, and troubleshooting by each symptom', () => {
    for (const h of [
      '## Architecture and data flow',
      '### Plain Envoy (any platform)',
      '### Istio ingress gateway',
      '### Envoy Gateway (external SDS Secret reference)',
      '## Troubleshooting by symptom',
    ])
      section(h);
    const trouble = section('## Troubleshooting by symptom');
    for (const symptom of ['Gateway never warms', 'NACK', 'Denied', 'Stale', 'ACME stuck'])
      assert.match(trouble, new RegExp(`\\*\\*${symptom}\\*\\*`), symptom);
  });

  it('its compatibility table names the versions the tests use', () => {
    const table = section('## What is tested');
    const versions = {
      kubernetes: pinned('test/harness/k8s/build.sh', /K8S_VERSION="\$\{K8S_VERSION:-([\d.]+)\}"/),
      etcd: pinned('test/harness/k8s/build.sh', /ETCD_VERSION="\$\{ETCD_VERSION:-([\d.]+)\}"/),
      helm: pinned('test/harness/helm/build.sh', /HELM_VERSION="\$\{HELM_VERSION:-([\d.]+)\}"/),
      certManager: pinned('test/harness/helm/crds.sh', /CERT_MANAGER_VERSION:-(v[\d.]+)\}/),
      prometheusOperator: pinned('test/harness/helm/crds.sh', /PROMETHEUS_OPERATOR_VERSION:-(v[\d.]+)\}/),
      envoyProtos:
        (JSON.parse(readFileSync('package.json', 'utf8')) as { devDependencies: Record<string, string> }).devDependencies[
          '@grpc/grpc-js-xds'
        ] ?? '',
    };
    for (const [what, v] of Object.entries(versions)) assert.ok(table.includes(v), `${what} ${v} in the table`);
    assert.match(table, /Node\.js \| 24 LTS/);
    assert.match(table, /22 supported/);
  });

  it('the repository carries the license package.json names', () => {
    assert.equal((JSON.parse(readFileSync('package.json', 'utf8')) as { license: string }).license, 'Apache-2.0');
    const license = readFileSync('LICENSE', 'utf8');
    assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
  });
});
