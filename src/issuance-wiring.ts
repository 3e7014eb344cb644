// main.ts's builder for the issuance engine: where its resources come from (the config, or
// custom resources), where it persists (files, or Kubernetes Secrets through the server's
// one API client) and whether it waits for a leader Lease.

import type { ServerConfig } from './config/server-config.js';
import { CustomResourceSource } from './issuance/custom-resource-source.js';
import { IssuanceEngine } from './issuance/engine.js';
import type { IssuanceConfig } from './issuance/issuance-config.js';
import { CustomResourcePersister } from './issuance/persisters/custom-resource-persister.js';
import { ShimController } from './issuance/shims/shim-controller.js';
import { KubernetesSecretPersister } from './issuance/persisters/kubernetes-secret-persister.js';
import type { KubernetesConfig } from './config/kubernetes-config.js';
import { secretName as kubernetesSecretName } from './kubernetes/kubernetes-names.js';
import { LeaderLease } from './kubernetes/leader-lease.js';
import type { SharedKubeClient } from './kubernetes-wiring.js';

/**
 * The engine for a config with an `issuance:` section. Persistence `kubernetes` (the
 * default when the config has a `kubernetes:` section): Secrets through the server's API
 * client, and leader election on a Lease unless `leaderElection.enabled: false`.
 */
export function issuanceEngine(
  config: ServerConfig,
  parsed: IssuanceConfig,
  kube: { settings: KubernetesConfig; client: SharedKubeClient } | undefined,
): IssuanceEngine {
  const base = { config: parsed, dataDir: config.dataDir, trustLoopback: config.trustLoopback };
  if (parsed.persistence !== 'kubernetes' || !kube) return new IssuanceEngine(base);
  const connect = kube.client.get;
  const election = parsed.leaderElection;
  const resources = parsed.customResources;
  return new IssuanceEngine({
    ...base,
    servedName: kubernetesSecretName,
    persister: resources ? new CustomResourcePersister(connect) : new KubernetesSecretPersister(connect),
    ...(resources
      ? {
          resourceSource: (apply, logger, renewalRequested) => {
            const source = new CustomResourceSource({
              client: connect,
              kubernetes: kube.settings,
              parse: resources,
              onResources: apply,
              onRenewalRequested: renewalRequested,
              logger,
            });
            const shims = parsed.shims;
            if (!shims || !(shims.gateways || shims.ingresses)) return source;
            // gateway-shim / ingress-shim: they write the Certificates the source then reads.
            const shim = new ShimController({ client: connect, kubernetes: kube.settings, settings: shims, logger });
            return {
              start: async () => {
                await shim.start();
                source.start();
              },
              stop: async () => {
                await shim.stop();
                await source.stop();
              },
            };
          },
        }
      : {}),
    ...(election
      ? {
          leaderElection: (callbacks) =>
            new LeaderLease({
              client: connect,
              namespace: election.namespace,
              name: election.leaseName,
              ...(election.identity ? { identity: election.identity } : {}),
              leaseDurationMs: election.leaseDurationMs,
              renewDeadlineMs: election.renewDeadlineMs,
              ...callbacks,
            }),
        }
      : {}),
  });
}
