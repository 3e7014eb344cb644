// Shared setup of the cert-manager tests: a real kube-apiserver with cert-manager's CRDs
// and controllers (and trust-manager's, when asked), plus the cert-manager operations the
// tests perform the way cert-manager's own tools do them.
import { X509Certificate } from 'node:crypto';
import type { TestContext } from 'node:test';
import {
  CertManagerBinariesNotFoundError,
  findCertManagerBinaries,
  installCrds,
  startCertManager,
  startTrustManager,
  type CertManagerBinaries,
  type RunningController,
} from '../harness/cert-manager.js';
import type { KubeCluster } from '../harness/kube-cluster.js';
import { KubeApiError } from '../../src/kubernetes/kube-errors.js';
import { clusterOrSkip, eventually, KubeAdmin } from '../k8s/kube-test-env.js';

export interface CertManagerEnv {
  cluster: KubeCluster;
  admin: KubeAdmin;
  certManager: RunningController;
  trustManager?: RunningController;
  /** Registers a teardown step that runs (last registered first) before the cluster stops. */
  defer(fn: () => unknown): void;
}

/**
 * A cluster with cert-manager running (and trust-manager, reading Bundle sources from
 * trustNamespace, when given), torn down after the test. Outside CI a machine without
 * the binaries skips; under CI=true that is a failure (.ci/run builds them).
 */
export async function certManagerOrSkip(t: TestContext, opts: { trustNamespace?: string } = {}): Promise<CertManagerEnv | undefined> {
  let bins: CertManagerBinaries;
  try {
    bins = findCertManagerBinaries();
  } catch (err) {
    if (err instanceof CertManagerBinariesNotFoundError && process.env['CI'] !== 'true') {
      t.skip(err.message);
      return undefined;
    }
    throw err;
  }
  const cluster = await clusterOrSkip(t);
  if (!cluster) return undefined;
  const admin = new KubeAdmin(cluster);
  const running: RunningController[] = [];
  const deferred: Array<() => unknown> = [];
  const defer = (fn: () => unknown): void => void deferred.push(fn);
  // One teardown, in order: the test's own steps (SDS server, peers), the controllers,
  // then the API server they all talk to.
  t.after(async () => {
    for (const fn of deferred.reverse()) await fn();
    for (const c of running.reverse()) await c.stop();
    admin.close();
    await cluster.stop();
  });
  await installCrds(cluster, bins.certManagerCrds);
  await admin.ensureNamespace('cert-manager'); // the ClusterIssuers' resource namespace
  const certManager = await startCertManager(cluster, bins);
  running.push(certManager);
  if (opts.trustNamespace === undefined) return { cluster, admin, certManager, defer };
  await installCrds(cluster, bins.trustManagerCrds);
  await admin.ensureNamespace(opts.trustNamespace);
  const trustManager = await startTrustManager(cluster, bins, { trustNamespace: opts.trustNamespace });
  running.push(trustManager);
  return { cluster, admin, certManager, trustManager, defer };
}

const CM = '/apis/cert-manager.io/v1';

export interface IssuerRef {
  name: string;
  kind: 'Issuer' | 'ClusterIssuer';
}

/** Creates an Issuer (namespace given) or a ClusterIssuer, and waits until it is Ready. */
export async function createIssuer(admin: KubeAdmin, ref: IssuerRef, spec: Record<string, unknown>, namespace?: string): Promise<void> {
  const path = ref.kind === 'Issuer' ? `${CM}/namespaces/${namespace}/issuers` : `${CM}/clusterissuers`;
  await admin.create(path, {
    apiVersion: 'cert-manager.io/v1',
    kind: ref.kind,
    metadata: { name: ref.name, ...(namespace && ref.kind === 'Issuer' ? { namespace } : {}) },
    spec,
  });
  await eventually(
    async () => readyStatus(await admin.client.request(`GET`, `${path}/${ref.name}`)) === 'True',
    60_000,
    `${ref.kind} ${ref.name} Ready`,
  );
}

export interface CertificateSpec {
  secretName: string;
  issuerRef: IssuerRef;
  dnsNames?: string[];
  commonName?: string;
  isCA?: boolean;
  usages?: string[];
}

/**
 * Creates a Certificate and waits until cert-manager has issued it (Ready, revision 1).
 * No webhook runs here to default fields, so the spec is written out in full.
 */
export async function createCertificate(admin: KubeAdmin, namespace: string, name: string, spec: CertificateSpec): Promise<void> {
  await admin.create(`${CM}/namespaces/${namespace}/certificates`, {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: { name, namespace },
    spec: {
      ...spec,
      issuerRef: { group: 'cert-manager.io', ...spec.issuerRef },
      duration: spec.isCA ? '8760h' : '2160h',
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
    },
  });
  await untilRevision(admin, namespace, name, 1);
}

interface CertificateObject {
  metadata: { generation?: number; resourceVersion?: string };
  status?: { conditions?: Array<Record<string, unknown>>; revision?: number };
}

export async function getCertificate(admin: KubeAdmin, namespace: string, name: string): Promise<CertificateObject> {
  return admin.client.request<CertificateObject>('GET', `${CM}/namespaces/${namespace}/certificates/${name}`);
}

/** Waits until the Certificate is Ready at this revision (or a later one). */
export async function untilRevision(
  admin: KubeAdmin,
  namespace: string,
  name: string,
  revision: number,
  timeoutMs = 60_000,
): Promise<void> {
  await eventually(
    async () => {
      const crt = await getCertificate(admin, namespace, name);
      return (crt.status?.revision ?? 0) >= revision && readyStatus(crt) === 'True';
    },
    timeoutMs,
    `Certificate ${namespace}/${name} Ready at revision ${revision}`,
  );
}

/**
 * Forces a re-issuance the way `cmctl renew` does: the Issuing condition set to True with
 * reason ManuallyTriggered, written through the status subresource. Returns the revision
 * the renewal will produce.
 */
export async function renewCertificate(admin: KubeAdmin, namespace: string, name: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const crt = await getCertificate(admin, namespace, name);
    const conditions = (crt.status?.conditions ?? []).filter((c) => c['type'] !== 'Issuing');
    conditions.push({
      type: 'Issuing',
      status: 'True',
      reason: 'ManuallyTriggered',
      message: 'Certificate re-issuance manually triggered',
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      observedGeneration: crt.metadata.generation,
    });
    try {
      await admin.client.request('PUT', `${CM}/namespaces/${namespace}/certificates/${name}/status`, {
        body: { ...crt, status: { ...crt.status, conditions } },
      });
      return (crt.status?.revision ?? 0) + 1;
    } catch (err) {
      // A controller wrote the object since we read it: read again, as cmctl's retry does.
      if (!(err instanceof KubeApiError && err.status === 409) || attempt >= 5) throw err;
    }
  }
}

function readyStatus(obj: unknown): string | undefined {
  const conditions = (obj as { status?: { conditions?: Array<{ type?: string; status?: string }> } }).status?.conditions;
  return conditions?.find((c) => c.type === 'Ready')?.status;
}

export interface TlsSecret {
  resourceVersion: string;
  certPem: string;
  keyPem: string;
  caPem: string;
}

export async function readTlsSecret(admin: KubeAdmin, namespace: string, name: string): Promise<TlsSecret> {
  const s = await admin.client.request<{ metadata: { resourceVersion: string }; data?: Record<string, string> }>(
    'GET',
    `/api/v1/namespaces/${namespace}/secrets/${name}`,
  );
  const text = (k: string): string => Buffer.from(s.data?.[k] ?? '', 'base64').toString('utf8');
  return { resourceVersion: s.metadata.resourceVersion, certPem: text('tls.crt'), keyPem: text('tls.key'), caPem: text('ca.crt') };
}

/** SHA-256 fingerprint of the first certificate of a PEM chain. */
export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** Fingerprints of every certificate of a PEM bundle, in order. */
export function fingerprints(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(fingerprint);
}

/** min / median / max of millisecond samples, for a diagnostic line. */
export function summary(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  return `${s.length} samples: min ${s[0]!.toFixed(1)} ms, median ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms, max ${s.at(-1)!.toFixed(1)} ms`;
}
