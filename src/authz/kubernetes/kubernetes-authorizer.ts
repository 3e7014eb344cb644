import type { Authorizer } from '../authorizer.js';
import type { CallerIdentity } from '../identity.js';
import { isKubernetesScheme, parseKubernetesName, type KubernetesName } from '../../kubernetes/kubernetes-names.js';
import { isGatewayApiScheme } from '../../kubernetes/gateway-api-names.js';
import { sidecarTarget, SIDECAR_SCHEME } from '../../kubernetes/sidecar-names.js';
import type { AccessReviewer, ObjectRef } from './access-reviewer.js';
import type { GatewayApiAuthorizer } from './gateway-api-authorizer.js';
import type { ReviewedIdentities } from './reviewed-identities.js';

/**
 * Who may read a Kubernetes name (only ServiceAccounts: by token or SPIFFE certificate):
 * - `kubernetes://ns/secret`: who may `get` that Secret (RBAC, via SubjectAccessReview).
 * - CA-only names (`kubernetes://ns/x-cacert`, `configmap://ns/cm`): any ServiceAccount
 *   of namespace `ns`; from another namespace, who may `get` the object the name is read
 *   from (for `x-cacert`: Secret `x-cacert` or Secret `x`, either may feed it; for a
 *   ConfigMap: the ConfigMap). So a caller learns nothing about other namespaces' objects
 *   that RBAC would not show it anyway.
 * - Loopback, Unix socket, anonymous and non-SPIFFE certificate callers get no Kubernetes
 *   name (they have no namespace and no user RBAC knows).
 * Other names (files, issued certificates) are left to the local policy of the config file.
 * Nothing here looks at the store: the answer is the same whether the object exists or not.
 */
export class KubernetesAuthorizer implements Authorizer {
  constructor(
    private readonly access: AccessReviewer,
    private readonly local: Authorizer,
    private readonly identities: ReviewedIdentities,
    /** Gateway API and ClusterTrustBundle names; undefined: nobody reads them. */
    private readonly gatewayApi?: GatewayApiAuthorizer,
    /** Sidecar mode: `sds://` names are the Kubernetes names they stand for (sidecar-names.ts). */
    private readonly sidecarNamespace?: string,
  ) {}

  canRead(identity: CallerIdentity, name: string): boolean | Promise<boolean> {
    if (this.sidecarNamespace !== undefined && name.startsWith(SIDECAR_SCHEME)) {
      const target = sidecarTarget(name, this.sidecarNamespace);
      return target ? this.canRead(identity, target) : false;
    }
    if (isGatewayApiScheme(name)) return this.gatewayApi?.canRead(identity, name) ?? false;
    if (!isKubernetesScheme(name)) return this.local.canRead(identity, name);
    const parsed = parseKubernetesName(name);
    const user = this.identities.userOf(identity);
    if (!parsed || identity.kind !== 'serviceaccount' || !identity.serviceAccount || !user) return false;
    if (parsed.kind === 'validation_context' && parsed.namespace === identity.serviceAccount.namespace) return true;
    const decisions = sourceObjects(parsed).map((o) => this.access.canGet(user, o));
    if (decisions.some((d) => d === true)) return true;
    if (decisions.every((d) => d === false)) return false;
    return Promise.all(decisions.map((d) => Promise.resolve(d))).then((all) => all.some(Boolean));
  }

  /**
   * For a name denied to this caller: calls `onGranted` once it becomes readable (a
   * RoleBinding appeared). A stream driver that registers this for names it denied at
   * subscribe, and subscribes them again on the call, serves them without a reconnect.
   * Returns the cancel function (a no-op where no later grant is possible).
   */
  watchGrant(identity: CallerIdentity, name: string, onGranted: () => void): () => void {
    if (this.sidecarNamespace !== undefined && name.startsWith(SIDECAR_SCHEME)) {
      const target = sidecarTarget(name, this.sidecarNamespace);
      return target ? this.watchGrant(identity, target, onGranted) : () => {};
    }
    if (isGatewayApiScheme(name)) return this.gatewayApi?.watchGrant(identity, name, onGranted) ?? (() => {});
    const parsed = parseKubernetesName(name);
    const user = this.identities.userOf(identity);
    if (!parsed || identity.kind !== 'serviceaccount' || !user) return () => {};
    let fired = false;
    const cancels = sourceObjects(parsed).map((o) =>
      this.access.watchGrant(user, o, () => {
        if (fired) return;
        fired = true;
        for (const c of cancels) c();
        onGranted();
      }),
    );
    return () => {
      for (const c of cancels) c();
    };
  }
}

/** The objects whose `get` permission opens a name. */
export function sourceObjects(name: KubernetesName): ObjectRef[] {
  if (name.scheme === 'configmap') return [{ resource: 'configmaps', namespace: name.namespace, name: name.configMap }];
  if (name.kind === 'tls_certificate') return [{ resource: 'secrets', namespace: name.namespace, name: name.secret }];
  return [
    { resource: 'secrets', namespace: name.namespace, name: name.secret },
    { resource: 'secrets', namespace: name.namespace, name: name.base },
  ];
}
