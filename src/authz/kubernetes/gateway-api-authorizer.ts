import type { CallerIdentity } from '../identity.js';
import { parseGatewayApiName, type GatewayApiName } from '../../kubernetes/gateway-api-names.js';
import type { AccessReviewer } from './access-reviewer.js';
import type { PodGateways } from './pod-gateways.js';
import type { ReviewedIdentities } from './reviewed-identities.js';

/** What the authorizer needs of the Gateways and ReferenceGrants the source watches. */
export interface GatewayBindings {
  /** The Gateway names the Secret in a listener, and (across namespaces) a ReferenceGrant allows it. */
  gatewayMayUse(gatewayNamespace: string, gatewayName: string, namespace: string, secret: string): boolean;
  onChange(listener: () => void): () => void;
}

/**
 * Who may read the Gateway API names (gateway-api-names.ts); only ServiceAccounts:
 * - `kubernetes-gateway://ns/secret`: the callers that run a Gateway which names the
 *   Secret in a listener's certificateRefs, across namespaces only while a ReferenceGrant
 *   in the Secret's namespace allows Gateways of the caller's namespace (as Istio does).
 *   The caller is bound to its Gateway by its token's pod (pod-gateways.ts). Asked again
 *   before every push, from the watched state: a grant or reference removed stops pushes.
 * - `backendtlspolicy://ns/policy` (CA certificates only): ServiceAccounts of `ns`; from
 *   another namespace, who may `get` that BackendTLSPolicy (RBAC).
 * - `clustertrustbundle://…`: any ServiceAccount (trust anchors meant for every pod; the
 *   kubelet projects them into any pod that asks).
 */
export class GatewayApiAuthorizer {
  constructor(
    private readonly bindings: GatewayBindings,
    private readonly pods: PodGateways,
    private readonly access: AccessReviewer,
    private readonly identities: ReviewedIdentities,
  ) {}

  canRead(identity: CallerIdentity, name: string): boolean | Promise<boolean> {
    const parsed = parseGatewayApiName(name);
    const user = this.identities.userOf(identity);
    const sa = identity.serviceAccount;
    if (!parsed || identity.kind !== 'serviceaccount' || !sa || !user) return false;
    switch (parsed.scheme) {
      case 'clustertrustbundle':
      case 'clustertrustbundle-signer':
        return true;
      case 'backendtlspolicy':
        if (parsed.namespace === sa.namespace) return true;
        return this.access.canGet(user, policyRef(parsed));
      case 'kubernetes-gateway': {
        const decide = (gateway: string | undefined): boolean =>
          gateway !== undefined && this.bindings.gatewayMayUse(sa.namespace, gateway, parsed.namespace, parsed.secret);
        const gateway = this.pods.gatewayOf(user, sa.namespace);
        return gateway instanceof Promise ? gateway.then(decide) : decide(gateway);
      }
    }
  }

  /** Calls `onGranted` once, when a denied name becomes readable. Returns the cancel function. */
  watchGrant(identity: CallerIdentity, name: string, onGranted: () => void): () => void {
    const parsed = parseGatewayApiName(name);
    const user = this.identities.userOf(identity);
    if (!parsed || identity.kind !== 'serviceaccount' || !user) return () => {};
    if (parsed.scheme === 'backendtlspolicy') return this.access.watchGrant(user, policyRef(parsed), onGranted);
    if (parsed.scheme !== 'kubernetes-gateway') return () => {};
    let done = false;
    const check = (): void => {
      void Promise.resolve(this.canRead(identity, name)).then((ok) => {
        if (!ok || done) return;
        done = true;
        stop();
        onGranted();
      });
    };
    // A Gateway or grant changed: maybe this caller's; the answer is cheap (watched state).
    const stop = this.bindings.onChange(check);
    return () => {
      done = true;
      stop();
    };
  }
}

function policyRef(name: Extract<GatewayApiName, { scheme: 'backendtlspolicy' }>): Parameters<AccessReviewer['canGet']>[1] {
  return { group: 'gateway.networking.k8s.io', resource: 'backendtlspolicies', namespace: name.namespace, name: name.policy };
}
