import type { Authorizer } from '../authorizer.js';
import type { CallerIdentity } from '../identity.js';
import { isKubernetesScheme, parseKubernetesName } from '../../kubernetes/kubernetes-names.js';
import type { AccessReviewer } from './access-reviewer.js';

/**
 * Who may read a Kubernetes name:
 * - `kubernetes://ns/secret`: a ServiceAccount that may `get` that Secret (RBAC, via
 *   SubjectAccessReview).
 * - CA-only names (`kubernetes://ns/x-cacert`, `configmap://ns/cm`): any authenticated
 *   caller (a ServiceAccount, or a verified client certificate); CA certificates are public.
 * - Loopback, Unix socket and anonymous callers get no Kubernetes name.
 * Other names (files, issued certificates) are left to the local policy of the config file.
 * Nothing here looks at the store: the answer is the same whether the Secret exists or not.
 */
export class KubernetesAuthorizer implements Authorizer {
  constructor(
    private readonly access: AccessReviewer,
    private readonly local: Authorizer,
  ) {}

  canRead(identity: CallerIdentity, name: string): boolean | Promise<boolean> {
    if (!isKubernetesScheme(name)) return this.local.canRead(identity, name);
    const parsed = parseKubernetesName(name);
    if (!parsed) return false;
    if (parsed.kind === 'validation_context') return identity.kind === 'serviceaccount' || identity.kind === 'x509';
    if (identity.kind !== 'serviceaccount' || !identity.serviceAccount) return false;
    return this.access.canGet(identity.serviceAccount, { namespace: parsed.namespace, name: parsed.secret });
  }

  /**
   * For a name denied to this caller: calls `onGranted` once it becomes readable (a
   * RoleBinding appeared). A stream driver that registers this for names it denied at
   * subscribe, and subscribes them again on the call, serves them without a reconnect.
   * Returns the cancel function (a no-op where no later grant is possible).
   */
  watchGrant(identity: CallerIdentity, name: string, onGranted: () => void): () => void {
    const parsed = parseKubernetesName(name);
    if (parsed?.kind !== 'tls_certificate' || identity.kind !== 'serviceaccount' || !identity.serviceAccount) return () => {};
    return this.access.watchGrant(identity.serviceAccount, { namespace: parsed.namespace, name: parsed.secret }, onGranted);
  }
}
