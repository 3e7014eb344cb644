// Issuance state is consistent at every crash point, against a real ACME server (Pebble,
// names resolved by BIND): the engine is stopped right after each persisted step of an
// issuance (nothing after the step is written, as with SIGKILL), started again on the
// same data directory, and must place one order per issuance; a forced renewal afterwards
// must carry a new key and a new order. Right after the Secret is written, the next key
// and the order are still on disk: they are recognised as finished and discarded.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IssuanceEngine } from '../../src/issuance/engine.js';
import type { IssuanceStep, StepHook } from '../../src/issuance/issuance-hooks.js';
import { startBind, type BindServer } from '../harness/acme/bind.js';
import { startPebble, type PebbleServer } from '../harness/acme/pebble.js';
import { freePort, NAMED, PEBBLE, skipUnlessTools } from '../harness/acme/tools.js';
import {
  V,
  certificateDir,
  isReady,
  readSecretFiles,
  revisionAtLeast,
  routeServer,
  secretDir,
  startEngine,
  statusOf,
  tempDir,
  waitForStatus,
  type TestEngine,
} from './engine-support.js';

const spki = (pem: string) => createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');

/** Every step after which the engine has persisted something new. */
const CRASH_POINTS: IssuanceStep[] = [
  'key-persisted',
  'order-created',
  'challenges-presented',
  'before-finalize',
  'order-finalized',
  'persisted',
];

describe('issuance crash points against Pebble', { skip: skipUnlessTools(NAMED, PEBBLE) }, () => {
  let bind: BindServer;
  let pebble: PebbleServer;
  let routes: Awaited<ReturnType<typeof routeServer>>;
  let current: IssuanceEngine | undefined;
  let caBundleFile: string;
  const engines: TestEngine[] = [];

  before(async () => {
    bind = await startBind({ zone: 'example.test' });
    const httpPort = await freePort();
    routes = await routeServer(httpPort, () => current);
    pebble = await startPebble({ dnsServer: `127.0.0.1:${bind.port}`, httpPort });
    caBundleFile = join(tempDir('crash-shared-'), 'pebble-ca.pem');
    writeFileSync(caBundleFile, pebble.caPem);
  });
  after(async () => {
    for (const e of engines) await e.stop().catch(() => {});
    await routes?.close();
    await pebble?.stop();
    await bind?.stop();
  });

  const resources = (name: string) => [
    {
      apiVersion: V,
      kind: 'ClusterIssuer',
      metadata: { name: 'pebble' },
      spec: {
        acme: {
          server: pebble.directoryUrl,
          email: 'ops@example.test',
          caBundleFile,
          privateKeySecretRef: { name: 'pebble-account-key' },
          solvers: [{ http01: { ingress: {} } }],
        },
      },
    },
    {
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name, namespace: 'default' },
      spec: {
        secretName: name,
        dnsNames: [`${name}.example.test`],
        issuerRef: { name: 'pebble', kind: 'ClusterIssuer' },
        privateKey: { algorithm: 'ECDSA' },
      },
    },
  ];

  async function engine(name: string, dataDir: string, hook: StepHook): Promise<TestEngine> {
    mkdirSync(secretDir(dataDir, 'cert-manager', 'unused'), { recursive: true });
    const e = await startEngine(resources(name), { dataDir, hook });
    engines.push(e);
    current = e.engine;
    return e;
  }

  for (const point of CRASH_POINTS) {
    test(`stopped right after "${point}": one order for the issuance, and a forced renewal brings a new key and a new order`, async () => {
      const name = `crash-${point}`;
      const id = `default/${name}`;
      const dataDir = tempDir('crash-');
      const steps: IssuanceStep[] = [];
      let reached!: () => void;
      const atPoint = new Promise<void>((r) => (reached = r));
      const first = await engine(name, dataDir, (step, _info, signal) => {
        steps.push(step);
        if (step !== point) return;
        reached();
        // Held until the engine stops: nothing after this step is persisted.
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      });
      await atPoint;
      await first.stop();

      const second = await engine(name, dataDir, (step) => void steps.push(step));
      const issued = await waitForStatus(second.engine, id, isReady, `issued after a stop at ${point}`, 60_000);
      const orders = () => steps.filter((s) => s === 'order-created').length;
      assert.equal(orders(), 1, `one order for the first issuance (steps: ${steps.join(', ')})`);
      const firstKey = spki(readSecretFiles(dataDir, 'default', name).key);
      const firstChain = readSecretFiles(dataDir, 'default', name).crt;

      await second.engine.renew(id);
      await waitForStatus(second.engine, id, revisionAtLeast((issued.revision ?? 0) + 1), 'the forced renewal', 60_000);
      const renewed = readSecretFiles(dataDir, 'default', name);
      assert.equal(orders(), 2, `one new order for the forced renewal (steps: ${steps.join(', ')})`);
      assert.notEqual(spki(renewed.key), firstKey, 'the forced renewal carries a new key');
      assert.notEqual(renewed.crt, firstChain, 'and a new certificate');
      const dir = certificateDir(dataDir, 'default', name);
      assert.ok(!existsSync(join(dir, 'next.key')) && !existsSync(join(dir, 'order.json')), 'no in-progress state left');
      assert.ok(statusOf(second.engine, id));
      await second.stop();
    });
  }
});
