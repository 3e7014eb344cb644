// The shared set-up of the conformance suites: one real server, fixtures and one
// Envoy-playing client per test file, and fresh secret names so tests stay independent.
import { after, before } from 'node:test';
import { FakeEnvoy } from './fake-envoy.js';
import type { Pair } from './openssl-certs.js';
import { makeFixtures, startTestServer, tls, type Fixtures, type TestServer } from './test-server.js';

export interface ConformanceServer {
  server: TestServer;
  fx: Fixtures;
  envoy: FakeEnvoy;
  /** Puts a new secret under a name no other test uses, and returns the name. */
  fresh(pair?: Pair): string;
}

/** Registers before/after hooks; the fields are filled in when the file's tests run. */
export function useConformanceServer(prefix: string, doc: Record<string, unknown> = {}): ConformanceServer {
  let seq = 0;
  const ctx = {
    fresh(pair?: Pair): string {
      const name = `${prefix}-${++seq}`;
      ctx.server.put(name, tls(pair ?? ctx.fx.web1));
      return name;
    },
  } as ConformanceServer;
  before(async () => {
    ctx.fx = makeFixtures();
    ctx.server = await startTestServer(doc);
    ctx.envoy = new FakeEnvoy(ctx.server.grpcAddress!);
  });
  after(async () => {
    ctx.envoy.close();
    await ctx.server.stop();
  });
  return ctx;
}
