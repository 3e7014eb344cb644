// The real cert-manager and trust-manager for tests, run against the harness's
// kube-apiserver (kube-cluster.ts). Built from the Go module proxy by
// test/harness/cert-manager/build.sh, which also keeps each project's deploy/crds.
//
// What runs:
// - cert-manager-controller: our main over cert-manager's pkg/controller, with the
//   certificates controllers, issuers, clusterissuers, the certificaterequests approver
//   and the ca and selfsigned issuers. No webhook, so nothing defaults or validates
//   cert-manager resources beyond the CRDs' schemas: tests write complete, valid objects.
// - trust-manager: its own main, leader election off. Its webhook server starts (the
//   manager needs it) on loopback with a throwaway certificate, but no
//   ValidatingWebhookConfiguration points at it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KubeClient } from '../../src/kubernetes/kube-client.js';
import { fromKubeconfig } from '../../src/kubernetes/kube-connection.js';
import { KubeApiError } from '../../src/kubernetes/kube-errors.js';
import { makeCa, makeLeaf } from '../support/openssl-certs.js';
import { freePorts, Proc, type KubeCluster } from './kube-cluster.js';

/** The binaries or CRDs are not there: run test/harness/cert-manager/build.sh. */
export class CertManagerBinariesNotFoundError extends Error {
  readonly code = 'CERT_MANAGER_BINARIES_NOT_FOUND';
  constructor(message: string) {
    super(message);
    this.name = 'CertManagerBinariesNotFoundError';
  }
}

export interface CertManagerBinaries {
  dir: string;
  controller: string;
  trustManager: string;
  certManagerCrds: string[];
  trustManagerCrds: string[];
}

const START_TIMEOUT_MS = 60_000;

/** The cache folder build.sh fills (it owns versions and layout; we ask it where). */
export function findCertManagerBinaries(): CertManagerBinaries {
  const script = findBuildScript();
  const howTo = `run ${script ?? 'test/harness/cert-manager/build.sh'} (builds cert-manager's controller and trust-manager into the user cache; minutes cold, instant when cached)`;
  if (!script) throw new CertManagerBinariesNotFoundError(`cert-manager test binaries not found: ${howTo}`);
  const res = spawnSync('bash', [script, '--print-bin-dir'], { encoding: 'utf8' });
  const dir = res.status === 0 ? res.stdout.trim().split('\n').pop() : undefined;
  if (!dir)
    throw new CertManagerBinariesNotFoundError(
      `cert-manager test binaries not found (${script} --print-bin-dir failed: ${res.stderr || res.error?.message}); ${howTo}`,
    );
  const bins: CertManagerBinaries = {
    dir,
    controller: join(dir, 'bin', 'cert-manager-controller'),
    trustManager: join(dir, 'bin', 'trust-manager'),
    certManagerCrds: yamlFiles(join(dir, 'crds', 'cert-manager')),
    trustManagerCrds: yamlFiles(join(dir, 'crds', 'trust-manager')),
  };
  if (
    !existsSync(bins.controller) ||
    !existsSync(bins.trustManager) ||
    bins.certManagerCrds.length === 0 ||
    bins.trustManagerCrds.length === 0
  ) {
    throw new CertManagerBinariesNotFoundError(`cert-manager test binaries not found in ${dir}: ${howTo}`);
  }
  return bins;
}

function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

function findBuildScript(): string | undefined {
  // This file runs from test/harness/ (ts) or dist/test/harness/ (js); walk up to the repo.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test', 'harness', 'cert-manager', 'build.sh');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

/** Creates the CRDs of these files and waits until the API server serves each. */
export async function installCrds(cluster: KubeCluster, files: readonly string[]): Promise<void> {
  const client = new KubeClient(fromKubeconfig(cluster.kubeconfigPath, undefined, 'test'));
  const base = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  try {
    const names: string[] = [];
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        const crd = doc.toJS() as { kind?: string; metadata?: { name?: string } } | null;
        if (crd?.kind !== 'CustomResourceDefinition' || !crd.metadata?.name) continue;
        try {
          await client.request('POST', base, { body: crd });
        } catch (err) {
          if (!(err instanceof KubeApiError && err.status === 409)) throw err;
        }
        names.push(crd.metadata.name);
      }
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (const name of names) {
      for (;;) {
        const crd = await client.request<{ status?: { conditions?: Condition[] } }>('GET', `${base}/${name}`);
        if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
        if (Date.now() > deadline) throw new Error(`CRD ${name} not established after ${START_TIMEOUT_MS} ms`);
        await sleep(100);
      }
    }
  } finally {
    client.close();
  }
}

export interface RunningController {
  readonly logFile: string;
  stop(): Promise<void>;
}

/**
 * Starts cert-manager's controllers as the cluster admin (the kubeconfig's identity).
 * Install the CRDs first. Resolves once the controllers are constructed and running;
 * readiness of issuers and certificates is the test's to wait for.
 */
export async function startCertManager(
  cluster: KubeCluster,
  bins: CertManagerBinaries,
  opts: { clusterResourceNamespace?: string } = {},
): Promise<RunningController> {
  const logFile = join(cluster.tmpDir, 'cert-manager-controller.log');
  const proc = Proc.start(
    'cert-manager-controller',
    bins.controller,
    [`--kubeconfig=${cluster.kubeconfigPath}`, `--cluster-resource-namespace=${opts.clusterResourceNamespace ?? 'cert-manager'}`, '--v=2'],
    logFile,
  );
  try {
    await proc.waitUntil(START_TIMEOUT_MS, async () => readFileSync(logFile, 'utf8').includes('controllers started'));
  } catch (err) {
    await proc.stop(0);
    throw err;
  }
  return { logFile, stop: () => proc.stop(10_000) };
}

/**
 * Starts trust-manager as the cluster admin, reading Bundle sources from trustNamespace.
 * Install its CRDs first. Resolves once its readiness probe answers 200.
 */
export async function startTrustManager(
  cluster: KubeCluster,
  bins: CertManagerBinaries,
  opts: { trustNamespace: string },
): Promise<RunningController> {
  const logFile = join(cluster.tmpDir, 'trust-manager.log');
  // The webhook server's certificate (tls.crt, tls.key), for 127.0.0.1 where it listens.
  const certDir = join(cluster.tmpDir, 'trust-manager-webhook');
  mkdirSync(certDir, { recursive: true });
  const ca = makeCa('trust-manager webhook test CA');
  const serving = makeLeaf(ca, ['localhost']);
  writeFileSync(join(certDir, 'tls.crt'), serving.certPem);
  writeFileSync(join(certDir, 'tls.key'), serving.keyPem, { mode: 0o600 });
  const [readyzPort, metricsPort, webhookPort] = await freePorts(3);
  const proc = Proc.start(
    'trust-manager',
    bins.trustManager,
    [
      `--kubeconfig=${cluster.kubeconfigPath}`,
      '--leader-elect=false',
      `--trust-namespace=${opts.trustNamespace}`,
      `--readiness-probe-port=${readyzPort}`,
      `--metrics-port=${metricsPort}`,
      '--webhook-host=127.0.0.1',
      `--webhook-port=${webhookPort}`,
      `--webhook-certificate-dir=${certDir}`,
      '--log-level=2',
    ],
    logFile,
  );
  try {
    await proc.waitUntil(START_TIMEOUT_MS, async () => (await httpStatus(`http://127.0.0.1:${readyzPort}/readyz`)) === 200);
  } catch (err) {
    await proc.stop(0);
    throw err;
  }
  return { logFile, stop: () => proc.stop(10_000) };
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
