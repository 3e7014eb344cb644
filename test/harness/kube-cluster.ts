// A real Kubernetes control plane for tests: etcd plus kube-apiserver on loopback, built
// from source by test/harness/k8s/build.sh (or taken from KUBEBUILDER_ASSETS). No mocks.
//
// What this cluster is, and is not:
// - Only etcd and kube-apiserver run: no controller-manager, no scheduler, no kubelet.
//   So ServiceAccounts get no token Secrets (use TokenRequest), a deleted namespace stays
//   Terminating forever (use a fresh namespace name per test, never reuse one), and no
//   "default" ServiceAccount appears in new namespaces. The ServiceAccount admission
//   plugin is disabled (as controller-runtime's envtest does) so Pods can be created
//   without one; nothing ever runs them.
// - Authorization is RBAC only; the API server bootstraps its default ClusterRoles. The
//   admin identity is a static token in group system:masters.
// - ServiceAccount tokens are signed with a key pair made here; the API audiences are the
//   issuer URL and 'envoy-sds'.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const ENVOY_SDS_AUDIENCE = 'envoy-sds';

export interface KubeCluster {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** Static bearer token of user "admin" in group system:masters. */
  readonly adminToken: string;
  /** Admin kubeconfig (token auth, CA data), usable by client-node and kubectl. */
  readonly kubeconfigPath: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly caPem: string;
  readonly binDir: string;
  readonly kubectlPath?: string;
  readonly serviceAccountIssuer: string;
  /** Audiences the API server accepts when a TokenReview names none. */
  readonly apiAudiences: readonly string[];
  /** Temp dir with data, certs and logs; removed by stop() unless KUBE_HARNESS_KEEP=1. */
  readonly tmpDir: string;
  readonly logFiles: { readonly etcd: string; readonly apiServer: string };
  /**
   * Stops kube-apiserver and etcd, then starts both again on the same ports and data. Open
   * watches end cleanly, as in a rolling restart ({ crash: true }: SIGKILL, connections
   * reset).
   */
  restart(options?: StopOptions): Promise<void>;
  stopApiServer(options?: StopOptions): Promise<void>;
  /** Starts kube-apiserver again (same port, certs, etcd) and waits for /readyz. */
  startApiServer(): Promise<void>;
  /** Stops both processes (SIGTERM, then SIGKILL) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface KubeClusterOptions {
  /** Time allowed for each process to become ready. Default 120 s. */
  startTimeoutMs?: number;
  /** Appended to kube-apiserver's arguments (feature gates, verbosity, ...). */
  extraApiServerArgs?: readonly string[];
}

export interface StopOptions {
  /** SIGKILL at once instead of a graceful SIGTERM: clients see connections reset. */
  crash?: boolean;
}

/** The binaries are not there: run test/harness/k8s/build.sh. */
export class KubeBinariesNotFoundError extends Error {
  readonly code = 'KUBE_BINARIES_NOT_FOUND';
  constructor(message: string) {
    super(message);
    this.name = 'KubeBinariesNotFoundError';
  }
}

export interface KubeBinaries {
  binDir: string;
  kubeApiServer: string;
  etcd: string;
  kubectl?: string;
}

const STOP_TIMEOUT_MS = 15_000;

/** KUBEBUILDER_ASSETS first, then the cache dir that build.sh fills. */
export function findKubeBinaries(): KubeBinaries {
  const assets = process.env['KUBEBUILDER_ASSETS'];
  if (assets && existsSync(join(assets, 'kube-apiserver')) && existsSync(join(assets, 'etcd'))) {
    return withKubectl({ binDir: assets, kubeApiServer: join(assets, 'kube-apiserver'), etcd: join(assets, 'etcd') });
  }
  const script = findBuildScript();
  const howTo = `run ${script ?? 'test/harness/k8s/build.sh'} (builds kube-apiserver, kubectl and etcd into the user cache; about 20 min cold, instant when cached)`;
  if (!script) throw new KubeBinariesNotFoundError(`Kubernetes test binaries not found: ${howTo}`);
  // build.sh owns the versions and the cache layout; ask it where the binaries live.
  const res = spawnSync('bash', [script, '--print-bin-dir'], { encoding: 'utf8' });
  const binDir = res.status === 0 ? res.stdout.trim().split('\n').pop() : undefined;
  if (!binDir) {
    throw new KubeBinariesNotFoundError(
      `Kubernetes test binaries not found (${script} --print-bin-dir failed: ${res.stderr || res.error?.message}); ${howTo}`,
    );
  }
  const bins = { binDir, kubeApiServer: join(binDir, 'kube-apiserver'), etcd: join(binDir, 'etcd') };
  if (!existsSync(bins.kubeApiServer) || !existsSync(bins.etcd)) {
    throw new KubeBinariesNotFoundError(`Kubernetes test binaries not found in ${binDir}: ${howTo}`);
  }
  return withKubectl(bins);
}

function withKubectl(bins: KubeBinaries): KubeBinaries {
  const kubectl = join(bins.binDir, 'kubectl');
  return existsSync(kubectl) ? { ...bins, kubectl } : bins;
}

function findBuildScript(): string | undefined {
  // This file runs from test/harness/ (ts) or dist/test/harness/ (js); walk up to the repo.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test', 'harness', 'k8s', 'build.sh');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export async function startKubeCluster(options: KubeClusterOptions = {}): Promise<KubeCluster> {
  const bins = findKubeBinaries();
  const tmp = await mkdtemp(join(tmpdir(), 'kube-harness-'));
  const cluster = new LocalKubeCluster(bins, tmp, options);
  try {
    await cluster.init();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

class LocalKubeCluster implements KubeCluster {
  readonly adminToken = randomBytes(24).toString('hex');
  readonly serviceAccountIssuer = SERVICE_ACCOUNT_ISSUER;
  readonly apiAudiences = [SERVICE_ACCOUNT_ISSUER, ENVOY_SDS_AUDIENCE] as const;
  readonly binDir: string;
  readonly kubectlPath?: string;
  readonly kubeconfigPath: string;
  readonly logFiles: { etcd: string; apiServer: string };
  server = '';
  caPem = '';

  private etcdPort = 0;
  private etcdPeerPort = 0;
  private apiPort = 0;
  private etcd: Proc | undefined;
  private apiServer: Proc | undefined;
  private stopped = false;
  private readonly startTimeoutMs: number;

  constructor(
    private readonly bins: KubeBinaries,
    readonly tmpDir: string,
    private readonly options: KubeClusterOptions,
  ) {
    this.binDir = bins.binDir;
    if (bins.kubectl) this.kubectlPath = bins.kubectl;
    this.kubeconfigPath = join(tmpDir, 'kubeconfig');
    this.logFiles = { etcd: join(tmpDir, 'etcd.log'), apiServer: join(tmpDir, 'kube-apiserver.log') };
    this.startTimeoutMs = options.startTimeoutMs ?? 120_000;
    installExitHook();
    liveDirs.add(tmpDir);
  }

  async init(): Promise<void> {
    const [etcdPort, etcdPeerPort, apiPort] = await freePorts(3);
    if (!etcdPort || !etcdPeerPort || !apiPort) throw new Error('could not reserve ports');
    this.etcdPort = etcdPort;
    this.etcdPeerPort = etcdPeerPort;
    this.apiPort = apiPort;
    this.server = `https://127.0.0.1:${this.apiPort}`;

    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(this.tmpDir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(this.tmpDir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    // token,user,uid,"group1,group2"
    writeFileSync(join(this.tmpDir, 'tokens.csv'), `${this.adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });

    await this.startEtcd();
    await this.startApiServer();
  }

  async startEtcd(): Promise<void> {
    if (this.etcd?.running) return;
    const peer = `http://127.0.0.1:${this.etcdPeerPort}`;
    const client = `http://127.0.0.1:${this.etcdPort}`;
    this.etcd = Proc.start(
      'etcd',
      this.bins.etcd,
      [
        '--name=harness',
        `--data-dir=${join(this.tmpDir, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=harness=${peer}`,
        '--initial-cluster-state=new', // ignored when the data dir exists (restart)
        '--unsafe-no-fsync', // a test cluster: speed over durability across power loss
        '--log-level=warn',
      ],
      this.logFiles.etcd,
    );
    await this.etcd.waitUntil(this.startTimeoutMs, async () => {
      const res = await httpGet(`${client}/health`);
      return res.status === 200 && /"health":\s*"true"/.test(res.body);
    });
  }

  async startApiServer(): Promise<void> {
    if (this.apiServer?.running) return;
    const certDir = join(this.tmpDir, 'pki');
    this.apiServer = Proc.start(
      'kube-apiserver',
      this.bins.kubeApiServer,
      [
        `--etcd-servers=http://127.0.0.1:${this.etcdPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${this.apiPort}`,
        // Self-signed serving certificate for 127.0.0.1 (the bind address), written on first
        // start and reused on restart, so caPem stays valid.
        `--cert-dir=${certDir}`,
        '--authorization-mode=RBAC',
        `--token-auth-file=${join(this.tmpDir, 'tokens.csv')}`,
        `--service-account-issuer=${this.serviceAccountIssuer}`,
        `--service-account-key-file=${join(this.tmpDir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(this.tmpDir, 'sa.key')}`,
        `--api-audiences=${this.apiAudiences.join(',')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        // Pods would need a "default" ServiceAccount, which only the controller-manager makes.
        '--disable-admission-plugins=ServiceAccount',
        // The "kubernetes" Service's endpoints would be 127.0.0.1, which validation refuses.
        '--endpoint-reconciler-type=none',
        '--allow-privileged=true',
        '--profiling=false',
        // On SIGTERM, end open watches at once (clients see the stream end, then reconnect)
        // instead of keeping the process alive until its 60 s shutdown timeout.
        '--shutdown-watch-termination-grace-period=2s',
        ...(this.options.extraApiServerArgs ?? []),
      ],
      this.logFiles.apiServer,
    );
    await this.apiServer.waitUntil(this.startTimeoutMs, async () => {
      const res = await httpsGet(`${this.server}/readyz`, this.adminToken, undefined);
      return res.status === 200;
    });
    if (!this.caPem) {
      this.caPem = caFromServingChain(readFileSync(join(certDir, 'apiserver.crt'), 'utf8'));
      writeFileSync(this.kubeconfigPath, kubeconfig(this.server, this.caPem, this.adminToken), { mode: 0o600 });
    }
    // Proves the CA and token we hand out work (and checks a restart kept the same cert).
    const check = await httpsGet(`${this.server}/readyz`, this.adminToken, this.caPem);
    if (check.status !== 200) throw new Error(`kube-apiserver /readyz with CA: ${check.status} ${check.body}`);
  }

  async stopApiServer(options: StopOptions = {}): Promise<void> {
    await this.apiServer?.stop(options.crash ? 0 : STOP_TIMEOUT_MS);
    this.apiServer = undefined;
  }

  async stopEtcd(options: StopOptions = {}): Promise<void> {
    await this.etcd?.stop(options.crash ? 0 : STOP_TIMEOUT_MS);
    this.etcd = undefined;
  }

  async restart(options: StopOptions = {}): Promise<void> {
    await this.stopApiServer(options);
    await this.stopEtcd(options);
    await this.startEtcd();
    await this.startApiServer();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.stopApiServer();
      await this.stopEtcd();
    } finally {
      if (process.env['KUBE_HARNESS_KEEP'] === '1') {
        console.error(`kube harness: kept ${this.tmpDir}`);
      } else {
        await rm(this.tmpDir, { recursive: true, force: true });
      }
      liveDirs.delete(this.tmpDir);
    }
  }
}

// --- processes ----------------------------------------------------------------------------

const live = new Set<ChildProcess>();
/** Temp dirs of clusters not stopped yet: removed on exit (a test that forgot stop()). */
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // The processes never outlive this one: on a normal exit we kill them here; when this
  // process is killed outright, setpriv's parent-death signal (below) does it.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    if (process.env['KUBE_HARNESS_KEEP'] === '1') return;
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
  if (!setprivPath()) {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        for (const child of live) child.kill('SIGKILL');
        process.kill(process.pid, sig);
      });
    }
  }
}

let setpriv: string | null | undefined;
function setprivPath(): string | null {
  if (setpriv === undefined) {
    setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;
  }
  return setpriv;
}

export class Proc {
  private exited = false;
  private readonly exitPromise: Promise<void>;
  private exitInfo = '';

  private constructor(
    private readonly name: string,
    private readonly child: ChildProcess,
    private readonly logFile: string,
  ) {
    live.add(child);
    this.exitPromise = new Promise((resolve) => {
      const done = (info: string) => {
        if (this.exited) return;
        this.exited = true;
        this.exitInfo = info;
        live.delete(child);
        resolve();
      };
      child.once('exit', (code, signal) => done(signal ? `signal ${signal}` : `code ${code}`));
      child.once('error', (err) => done(`error ${err.message}`));
    });
  }

  static start(name: string, bin: string, args: string[], logFile: string): Proc {
    installExitHook();
    const fd = openSync(logFile, 'a');
    writeSync(fd, `\n=== ${new Date().toISOString()} starting ${name}: ${bin} ${args.join(' ')}\n`);
    const sp = setprivPath();
    // setpriv --pdeathsig KILL execs the binary with "kill me when my parent dies" set.
    const [cmd, argv] = sp ? [sp, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
    try {
      const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd] });
      return new Proc(name, child, logFile);
    } finally {
      closeSync(fd);
    }
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Polls `ready` until it returns true; fails early, with the log's tail, if the process exits. */
  async waitUntil(timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(`${this.name} exited (${this.exitInfo}) before it was ready; log ${this.logFile}:\n${tail(this.logFile)}`);
      }
      try {
        if (await ready()) return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      await Promise.race([sleep(200), this.exitPromise]);
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms (${lastError}); log ${this.logFile}:\n${tail(this.logFile)}`);
  }

  /** SIGTERM, then SIGKILL after timeoutMs (at once when 0). */
  async stop(timeoutMs: number): Promise<void> {
    if (this.exited) return;
    if (timeoutMs <= 0) {
      this.child.kill('SIGKILL');
      await this.exitPromise;
      return;
    }
    this.child.kill('SIGTERM');
    const killed = await Promise.race([this.exitPromise.then(() => false), sleep(timeoutMs).then(() => true)]);
    if (killed) {
      this.child.kill('SIGKILL');
      await this.exitPromise;
    }
  }
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

// --- network helpers ----------------------------------------------------------------------

/** Ports the kernel hands out for 127.0.0.1, all held at once so they differ. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => {
    const addr = srv.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    return addr.port;
  });
  await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  return ports;
}

interface HttpResult {
  status: number;
  body: string;
}

function httpGet(url: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => collect(res, resolve, reject));
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

/** With ca undefined the server certificate is not checked (used before we know the CA). */
function httpsGet(url: string, token: string, ca: string | undefined): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        timeout: 5000,
        headers: { authorization: `Bearer ${token}` },
        ...(ca === undefined ? { rejectUnauthorized: false } : { ca }),
        agent: false,
      },
      (res) => collect(res, resolve, reject),
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

function collect(res: import('node:http').IncomingMessage, resolve: (r: HttpResult) => void, reject: (e: Error) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
  res.once('error', reject);
}

// --- certificates and kubeconfig ----------------------------------------------------------

/**
 * kube-apiserver's self-generated apiserver.crt holds the serving certificate followed by
 * the CA that signed it; clients should trust the CA only.
 */
export function caFromServingChain(chainPem: string): string {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const block of blocks) {
    if (new X509Certificate(block).ca) return `${block}\n`;
  }
  const only = blocks[0];
  if (blocks.length === 1 && only) return `${only}\n`; // a self-signed leaf is its own anchor
  throw new Error('no CA certificate in the API server serving chain');
}

function kubeconfig(server: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: harness',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: harness',
    '  context:',
    '    cluster: harness',
    '    user: admin',
    '    namespace: default',
    'current-context: harness',
    '',
  ].join('\n');
}
