// The stream layer's shape (issue 14, item 3): a driver handed its session and narrow
// dependencies, sessions with no clock of their own and no gRPC, and per-name state
// shared between streams. The driver runs here on a fake call (FakeCall: a transport
// cannot run without a network, and the point is that the driver needs none).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { CallerIdentity } from '../../src/authz/identity.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import type { CallEnd, EndReason } from '../../src/sds/call-end.js';
import { DeltaSession } from '../../src/sds/delta-session.js';
import { IdentityNames } from '../../src/sds/identity-names.js';
import type { DiscoveryRequest } from '../../src/sds/messages.js';
import { RateLimitedLog } from '../../src/sds/rate-limited-log.js';
import { DEFAULT_REQUEST_LIMITS } from '../../src/sds/request-checks.js';
import { SecretFanout } from '../../src/sds/secret-fanout.js';
import { SotwSession } from '../../src/sds/sotw-session.js';
import type { CallEvents, StreamCall } from '../../src/sds/stream-call.js';
import { StreamDriver, type StreamDeps, type StreamMethod } from '../../src/sds/stream-driver.js';
import { StreamRegistry, StreamStatus } from '../../src/sds/stream-status.js';
import { SECRET_TYPE_URL } from '../../src/sds/type-urls.js';
import type { StoredSecret } from '../../src/store/secret-material.js';
import type { SecretStore } from '../../src/store/secret-store.js';
import { grpcStatusOf } from '../../src/transport/grpc-status.js';
import { lookupUpstreamType } from '../support/envoy-protos.js';
import { useConformanceServer } from '../support/conformance-server.js';
import { until } from '../support/test-server.js';

const identity: CallerIdentity = { kind: 'unix', principals: ['unix'], peer: 'test' };
const node = { id: 'n', cluster: 'c' };

function secret(name: string, version: string): StoredSecret {
  return {
    name,
    kind: 'tls_certificate',
    version,
    material: { kind: 'tls_certificate', certificateChain: `chain ${version}`, privateKey: 'k' },
    origin: { source: 'test', ref: name },
    facts: { subject: '', notBefore: new Date(0), notAfter: new Date(0), dnsNames: [], sha256Fingerprint: '' },
    warnings: [],
    updatedAt: new Date(0),
  };
}

describe('sessions have no clock and speak no gRPC', () => {
  test('a SotW NACK is stamped with the clock the session is handed', () => {
    const s = new SotwSession(
      new StreamStatus(1, 'sotw', identity),
      'StreamSecrets',
      DEFAULT_REQUEST_LIMITS,
      undefined,
      () => 1_700_000_000_000,
    );
    s.onRequest({ type_url: SECRET_TYPE_URL, resource_names: ['a'], node });
    s.buildResponse([secret('a', 'v1')]);
    const v = s.onRequest({
      type_url: SECRET_TYPE_URL,
      resource_names: ['a'],
      response_nonce: '1',
      error_detail: { code: 13, message: 'bad key' },
    });
    assert.equal(v.type, 'accept');
    assert.equal(s.status.names.get('a')!.lastNack!.at.getTime(), 1_700_000_000_000);
  });

  test('a delta NACK is stamped with the clock the session is handed', () => {
    const s = new DeltaSession(new StreamStatus(1, 'delta', identity), 'DeltaSecrets', DEFAULT_REQUEST_LIMITS, undefined, () => 42_000);
    s.onRequest({ type_url: SECRET_TYPE_URL, resource_names_subscribe: ['a'], node });
    s.buildResponse([secret('a', 'v1')], []);
    s.onRequest({ type_url: SECRET_TYPE_URL, response_nonce: '1', error_detail: { code: 13, message: 'bad key' } });
    assert.equal(s.status.names.get('a')!.lastNack!.at.getTime(), 42_000);
  });

  test('a rejection names a reason; the gRPC edge maps every reason to its status code', () => {
    const s = new SotwSession(new StreamStatus(1, 'sotw', identity), 'StreamAggregatedResources', DEFAULT_REQUEST_LIMITS);
    const v = s.onRequest({ type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names: ['a'], node });
    assert.equal(v.type, 'reject');
    assert.ok(!('code' in v), 'no gRPC code in the session outcome');
    const expected: Record<EndReason, status> = {
      ok: status.OK,
      type_url: status.UNIMPLEMENTED,
      too_many_names: status.RESOURCE_EXHAUSTED,
      too_many_names_for_identity: status.RESOURCE_EXHAUSTED,
      bad_name: status.INVALID_ARGUMENT,
      name_too_long: status.INVALID_ARGUMENT,
      no_names: status.INVALID_ARGUMENT,
      unauthenticated: status.UNAUTHENTICATED,
      permission_denied: status.PERMISSION_DENIED,
      not_found: status.NOT_FOUND,
      internal: status.INTERNAL,
    };
    for (const [reason, code] of Object.entries(expected))
      assert.equal(grpcStatusOf({ reason: reason as EndReason, message: '' }), code, reason);
  });
});

/** A call that records what the driver does (FakeCall: the driver's whole view of a transport). */
class FakeCall implements StreamCall<DiscoveryRequest> {
  events: CallEvents<DiscoveryRequest> | undefined;
  readonly written: Buffer[] = [];
  ended: CallEnd | undefined;
  /** Whether the last write is still "on the wire" (write returns false until drain). */
  full = false;

  listen(events: CallEvents<DiscoveryRequest>): void {
    this.events = events;
  }
  write(message: readonly Buffer[]): boolean {
    this.written.push(Buffer.concat(message));
    this.full = true;
    return false;
  }
  end(end: CallEnd): void {
    this.ended ??= end;
  }
  drain(): void {
    this.full = false;
    this.events!.drain();
  }
}

/** Only what the driver may use of the store: get and watch. */
class MapStore implements Pick<SecretStore, 'get' | 'watch'> {
  readonly secrets = new Map<string, StoredSecret>();
  private readonly watchers = new Map<string, Set<(name: string, s: StoredSecret | undefined) => void>>();
  get(name: string): StoredSecret | undefined {
    return this.secrets.get(name);
  }
  watch(name: string, w: (name: string, s: StoredSecret | undefined) => void): () => void {
    const set = this.watchers.get(name) ?? new Set();
    this.watchers.set(name, set.add(w));
    return () => set.delete(w);
  }
  put(s: StoredSecret): void {
    this.secrets.set(s.name, s);
    for (const w of this.watchers.get(s.name) ?? []) w(s.name, s);
  }
  watching(name: string): number {
    return this.watchers.get(name)?.size ?? 0;
  }
}

function driverRig() {
  const store = new MapStore();
  const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const deps: StreamDeps = {
    store,
    authenticator: { authenticate: async () => identity },
    authorizer: { canRead: () => true },
    registry: new StreamRegistry(() => 5),
    metrics: new Metrics({ defaultMetrics: false }),
    logger,
    limits: DEFAULT_REQUEST_LIMITS,
    identityNames: new IdentityNames(100),
    clientLog: new RateLimitedLog(logger, { linesPerInterval: 10, intervalMs: 1000 }),
    now: () => 5,
  };
  const method: StreamMethod<DiscoveryRequest> = {
    rpc: 'StreamSecrets',
    protocol: 'sotw',
    family: 'sotw',
    deps,
    fanout: new SecretFanout(store),
    createSession: (status, budget) => new SotwSession(status, 'StreamSecrets', deps.limits, budget, deps.now),
  };
  const open = async (names: string[]): Promise<FakeCall> => {
    const call = new FakeCall();
    new StreamDriver(call, method, { address: 'test', listener: 'unix' }).start();
    call.events!.request({ type_url: SECRET_TYPE_URL, resource_names: names, node });
    await until(() => call.written.length > 0, 2000, 'first response');
    return call;
  };
  return { store, deps, method, open };
}

describe('the driver, on a fake call and a store it sees only through get and watch', () => {
  const Resp = lookupUpstreamType('envoy.service.discovery.v3.DiscoveryResponse');
  const versionOf = (b: Buffer) => (Resp.toObject(Resp.decode(b)) as { version_info: string }).version_info;

  test('while a response is unsent, two changes become one push of the newest version, on drain', async () => {
    const { store, open } = driverRig();
    store.put(secret('a', 'v1'));
    const call = await open(['a']);
    assert.equal(call.written.length, 1);
    assert.equal(versionOf(call.written[0]!), 'v1');
    store.put(secret('a', 'v2'));
    store.put(secret('a', 'v3'));
    assert.equal(call.written.length, 1, 'nothing written while the first response is unsent');
    call.drain();
    await until(() => call.written.length === 2, 2000, 'push on drain');
    assert.equal(versionOf(call.written[1]!), 'v3');
    call.drain();
    assert.equal(call.written.length, 2, 'v2 is never sent');
  });

  test('streams on one name share one store watch; it ends with the last stream', async () => {
    const { store, open, method } = driverRig();
    store.put(secret('shared', 'v1'));
    const calls = [await open(['shared']), await open(['shared']), await open(['shared'])];
    assert.equal(store.watching('shared'), 1);
    assert.equal(method.fanout.count('shared'), 3);
    store.put(secret('shared', 'v2'));
    for (const c of calls) c.drain();
    await until(() => calls.every((c) => c.written.length === 2), 2000, 'all pushed');
    for (const c of calls) c.events!.cancel();
    assert.equal(store.watching('shared'), 0);
  });
});

describe('on a real server', () => {
  const ctx = useConformanceServer('layer');

  test('fifty streams on one name hold one store watcher (/status counts fifty); cancelling them all removes it', async () => {
    const name = ctx.fresh();
    const streams = Array.from({ length: 50 }, () => ctx.envoy.sotw());
    for (const s of streams) s.request({ names: [name] });
    for (const s of streams) await s.response();
    assert.equal(ctx.server.store.watcherCount(name), 1);
    // /status still counts the streams, not the one shared watch.
    const status = (await (await fetch(`http://${ctx.server.httpAddress!}/status`)).json()) as {
      secrets: Array<{ name: string; watchers: number }>;
    };
    assert.equal(status.secrets.find((x) => x.name === name)?.watchers, 50);
    for (const s of streams) s.cancel();
    await until(() => ctx.server.store.watcherCount(name) === 0, 5000, 'last stream gone');
  });
});
