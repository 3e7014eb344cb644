// Leader election on a real coordination.k8s.io/v1 Lease: of two candidates one leads;
// when the leader releases, or dies without releasing (renewals stop), the other takes
// over; leadership never overlaps. Then two real servers issuing into the same Secret:
// only the leader issues, and the successor does not issue the certificate again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaderLease } from '../../src/kubernetes/leader-lease.js';
import { ANNOTATIONS } from '../../src/issuance/secret-facts.js';
import { makeCa } from '../support/openssl-certs.js';
import type { TestServer } from '../support/test-server.js';
import { tempDir } from '../issuance/engine-support.js';
import { caIssuedCertificate } from './issuance-resources.js';
import { clusterOrSkip, eventually, KubeAdmin, startKubeSdsServer, untilReady } from './kube-test-env.js';

type LeaseObj = { spec?: { holderIdentity?: string; leaseTransitions?: number } };

/** Candidates sharing one Lease, recording who leads and whether two ever did at once. */
class Election {
  leading = new Set<string>();
  started: string[] = [];
  overlapped = false;
  readonly candidates = new Map<string, LeaderLease>();

  constructor(
    private readonly admin: KubeAdmin,
    readonly namespace: string,
    readonly name = 'issuance',
  ) {}

  add(identity: string): LeaderLease {
    const lease = new LeaderLease({
      client: () => this.admin.client,
      namespace: this.namespace,
      name: this.name,
      identity,
      leaseDurationMs: 2000,
      renewDeadlineMs: 1000,
      onStartedLeading: () => {
        if (this.leading.size > 0) this.overlapped = true;
        this.leading.add(identity);
        this.started.push(identity);
      },
      onStoppedLeading: () => {
        this.leading.delete(identity);
      },
    });
    this.candidates.set(identity, lease);
    lease.start();
    return lease;
  }

  async holder(): Promise<string | undefined> {
    const l = await this.admin.client.request<LeaseObj>(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases/${this.name}`,
    );
    return l.spec?.holderIdentity;
  }

  async stopAll(): Promise<void> {
    for (const c of this.candidates.values()) await c.stop();
  }
}

test('leader election on a Lease', async (t) => {
  const cluster = await clusterOrSkip(t);
  if (!cluster) return;
  const admin = new KubeAdmin(cluster);
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop();
    admin.close();
    await cluster.stop();
  });

  await t.test('of two candidates exactly one leads, and the Lease names it', async (st) => {
    const e = new Election(admin, await admin.namespace('lease'));
    st.after(() => e.stopAll());
    const a = e.add('a');
    const b = e.add('b');
    await eventually(() => e.leading.size === 1, 10_000, 'a leader');
    const leader = [...e.leading][0]!;
    assert.equal(await e.holder(), leader);
    assert.equal(a.isLeader, leader === 'a');
    assert.equal(b.isLeader, leader === 'b');
    assert.deepEqual(e.started, [leader]);
    assert.equal(e.overlapped, false);
  });

  await t.test('a leader that dies (stops renewing, never releases) is replaced once the Lease expires', async (st) => {
    const e = new Election(admin, await admin.namespace('lease'));
    st.after(() => e.stopAll());
    e.add('a');
    await eventually(() => e.leading.has('a'), 10_000, 'a leads');
    e.add('b');
    await e.candidates.get('a')!.stop({ release: false });
    assert.equal(await e.holder(), 'a', 'the dead leader still holds the Lease');
    await eventually(() => e.leading.has('b'), 15_000, 'b takes over after expiry');
    assert.equal(await e.holder(), 'b');
    assert.deepEqual(e.started, ['a', 'b']);
    assert.equal(e.overlapped, false);
    const l = await admin.client.request<LeaseObj>('GET', `/apis/coordination.k8s.io/v1/namespaces/${e.namespace}/leases/${e.name}`);
    assert.equal(l.spec?.leaseTransitions, 1);
  });

  await t.test('a leader that stops releases the Lease, and the other candidate takes it', async (st) => {
    const e = new Election(admin, await admin.namespace('lease'));
    st.after(() => e.stopAll());
    e.add('a');
    await eventually(() => e.leading.has('a'), 10_000, 'a leads');
    e.add('b');
    await e.candidates.get('a')!.stop();
    await eventually(() => e.leading.has('b'), 15_000, 'b takes over');
    assert.deepEqual(e.started, ['a', 'b']);
    assert.equal(e.overlapped, false);
  });

  await t.test('two servers issuing into the same Secret: only the leader issues, and its successor does not issue again', async () => {
    const ns = await admin.namespace('ha');
    const ca = makeCa('HA CA');
    await admin.putSecret(ns, 'root-ca', { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
    const start = (identity: string) =>
      startKubeSdsServer(cluster, {
        namespaces: [ns],
        doc: {
          trustLoopback: true, // the test reads /issuance/status from loopback (off by default in Kubernetes)
          dataDir: tempDir('kube-ha-'),
          issuance: {
            backoff: { initial: '200ms', max: '1s' },
            leaderElection: { namespace: ns, leaseName: 'envoy-sds-issuance', identity, leaseDuration: '2s', renewDeadline: '1s' },
            resources: caIssuedCertificate(ns),
          },
        },
      });
    type Status = { certificates: Array<{ status?: { revision?: number; conditions: Array<{ type: string; status: string }> } }> };
    const readyOn = async (server: TestServer): Promise<boolean> => {
      const s = (await (await fetch(`http://${server.httpAddress}/issuance/status`)).json()) as Status;
      return s.certificates[0]?.status?.conditions.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    };
    const holder = async () =>
      (
        await admin.client
          .request<LeaseObj>('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/envoy-sds-issuance`)
          .catch(() => undefined)
      )?.spec?.holderIdentity;
    type SecretObj = { metadata: { resourceVersion: string; annotations?: Record<string, string> } };
    const served = () => admin.client.request<SecretObj>('GET', `/api/v1/namespaces/${ns}/secrets/web-tls`);

    const a = await start('replica-a');
    servers.push(a);
    await eventually(async () => (await holder()) === 'replica-a', 15_000, 'replica-a leads');
    const b = await start('replica-b');
    servers.push(b);
    await untilReady(a, 30_000);
    await untilReady(b, 30_000);
    await eventually(() => readyOn(a), 20_000, 'replica-a issued');
    const issued = await served();
    assert.equal(issued.metadata.annotations?.[ANNOTATIONS.revision], '1');
    assert.equal(await readyOn(b), false, 'the follower runs no controller (no status of its own)');

    await a.stop();
    servers.splice(servers.indexOf(a), 1);
    await eventually(async () => (await holder()) === 'replica-b', 15_000, 'replica-b takes over');
    // The successor evaluates the Certificate against the Secret and finds it up to date.
    await eventually(() => readyOn(b), 20_000, 'replica-b evaluated the certificate');
    const after = await served();
    assert.equal(after.metadata.annotations?.[ANNOTATIONS.revision], '1');
    assert.equal(after.metadata.resourceVersion, issued.metadata.resourceVersion, 'the Secret was not written again');
    for (const s of [a, b]) assert.doesNotMatch(s.logText(), /PRIVATE KEY/);
  });
});
