// Issuance resources shared by the Kubernetes-mode issuance tests.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { V } from '../issuance/engine-support.js';
import { eventually, type KubeAdmin } from './kube-test-env.js';

/** Issuer `ca` (CA Secret root-ca) and Certificate `web` -> Secret web-tls, in `ns`. */
export function caIssuedCertificate(ns: string): unknown[] {
  return [
    { apiVersion: V, kind: 'Issuer', metadata: { name: 'ca', namespace: ns }, spec: { ca: { secretName: 'root-ca' } } },
    {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'web', namespace: ns },
      spec: {
        secretName: 'web-tls',
        dnsNames: ['web.example.com'],
        issuerRef: { name: 'ca', kind: 'Issuer' },
        privateKey: { algorithm: 'ECDSA' },
      },
    },
  ];
}

/** deploy/crds/ created for real (custom resources need them), once each is Established. */
export async function installCrds(admin: KubeAdmin): Promise<void> {
  const crds = readdirSync('deploy/crds')
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join('deploy/crds', f), 'utf8')).map((d) => d.toJS() as { metadata: { name: string } }));
  const collection = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  for (const crd of crds) await admin.create(collection, crd, true);
  for (const crd of crds) {
    await eventually(
      async () => {
        const got = await admin.client.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
          'GET',
          `${collection}/${crd.metadata.name}`,
        );
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      },
      20_000,
      `CRD ${crd.metadata.name} established`,
    );
  }
}
