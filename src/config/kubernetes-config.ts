import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import * as z from 'zod';
import { ConfigError } from './config-error.js';
import { checkSchema } from './schema/check.js';
import { matching, nonEmpty, positiveInt, stringList } from './schema/fields.js';

/**
 * The `kubernetes:` section of the config file. Every duration has a default suited to
 * production; tests shorten them.
 *
 * kubernetes:
 *   kubeconfig: /path/to/kubeconfig   # default: in-cluster, else $KUBECONFIG
 *   namespaces: [apps, gateway]       # default: cluster-wide
 *   configMapKeys: [ca.crt, trust-bundle.pem]
 *   watch: { silentSeconds: 120, backoffInitialSeconds: 0.5, backoffMaxSeconds: 30 }
 *   authentication: { audiences: [envoy-sds], tokenCacheSeconds: 30, reviewIntervalSeconds: 60, spiffeTrustDomain: cluster.local }
 *   authorization: { allowCacheSeconds: 30, denyCacheSeconds: 5, staleIfErrorSeconds: 300 }
 *   events: { enabled: true }
 *   deliveryStatus: { namespace: envoy-sds, publishSeconds: 5 }   # fleet-wide delivery state
 *   gatewayApi: true                  # Gateways, ReferenceGrants, BackendTLSPolicies (CRDs needed)
 *   clusterTrustBundles: true         # certificates.k8s.io ClusterTrustBundles (cluster-scoped)
 *   sidecar: { tokenFile: /var/run/secrets/envoy-sds/token }   # in the gateway's pod, see below
 */
export interface KubernetesConfig {
  kubeconfig?: string;
  context?: string;
  /** Empty: every namespace (needs a ClusterRole). */
  namespaces: string[];
  /** ConfigMap keys that hold a CA bundle, first present wins. */
  configMapKeys: string[];
  requestTimeoutMs: number;
  watch: {
    /** A watch with no event, bookmark or end for this long is restarted. */
    silentMs: number;
    backoffInitialMs: number;
    backoffMaxMs: number;
    pageSize: number;
  };
  authentication: {
    audiences: string[];
    tokenCacheMs: number;
    /**
     * An open stream's token is reviewed again this often; a refusal ends the stream. It
     * bounds how long a deleted ServiceAccount's stream keeps receiving pushes.
     */
    reviewIntervalMs: number;
    /** Accept mTLS SPIFFE IDs spiffe://<domain>/ns/<ns>/sa/<sa>; unset: certificates give no ServiceAccount. */
    spiffeTrustDomain?: string;
  };
  authorization: {
    allowCacheMs: number;
    denyCacheMs: number;
    /** While the API server does not answer, the last decision stands for this long. */
    staleIfErrorMs: number;
  };
  events: { enabled: boolean; reportingInstance: string };
  /**
   * Each replica publishes its streams' delivery state as a ConfigMap in this namespace
   * (the pod's own, from $POD_NAMESPACE or the ServiceAccount mount), so any replica
   * answers for the fleet. Unset namespace and none known: local state only.
   */
  deliveryStatus: { enabled: boolean; namespace?: string; publishMs: number; replica: string };
  /** Watch Gateway API objects: `kubernetes-gateway://` and `backendtlspolicy://` names. */
  gatewayApi: boolean;
  /** Watch ClusterTrustBundles: `clustertrustbundle://` names. */
  clusterTrustBundles: boolean;
  /**
   * Sidecar mode (the server in the gateway's pod): a Unix socket caller is the pod's own
   * ServiceAccount, by the projected token in `tokenFile` (audience as above, reviewed like
   * a caller's), and `sds://` names stand for the Kubernetes names (sidecar-names.ts), the
   * short form in `namespace` (the pod's).
   */
  sidecar?: { tokenFile: string; namespace: string };
  /** Opt-in per name: a watched CA bundle that drops a CA is served as the union for a while (sources/kubernetes/bundle-holds.ts). */
  caBundleHold: BundleHoldRule[];
}

export interface BundleHoldRule {
  /** SDS names: exact, or a trailing `*`. */
  names: string[];
  holdForMs: number;
  /** time: hold for holdSeconds; acknowledged: until every subscriber ACKed the union (holdSeconds at most). */
  release: 'time' | 'acknowledged';
}

const AT = 'kubernetes';

/** Seconds in the file (fractions allowed), milliseconds inside. */
const seconds = (dflt: number) =>
  z
    .number({ error: 'must be a positive number of seconds' })
    .positive({ error: 'must be a positive number of seconds' })
    .refine(Number.isFinite, { error: 'must be a positive number of seconds' })
    .nullish()
    .transform((v) => Math.round((v ?? dflt) * 1000));

/** An absent or null section reads as empty. */
const section = <S extends z.ZodObject>(shape: S) => z.preprocess((v) => v ?? {}, shape);

const namespaceName = matching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, (ns) => `"${ns}" is not a namespace name`);

const kubernetesSection = z.strictObject({
  kubeconfig: nonEmpty.nullish(),
  context: nonEmpty.nullish(),
  namespaces: z.array(namespaceName).max(10_000).default([]),
  configMapKeys: stringList.min(1, { error: 'name at least one key' }).default(['ca.crt']),
  requestTimeoutSeconds: seconds(10),
  watch: section(
    z.strictObject({
      silentSeconds: seconds(120),
      backoffInitialSeconds: seconds(0.5),
      backoffMaxSeconds: seconds(30),
      // Small pages: each is streamed item by item, but the API server builds a whole page in
      // its own memory, and a continue token that expires costs one page, not five hundred.
      pageSize: positiveInt.default(100),
    }),
  ),
  authentication: section(
    z.strictObject({
      audiences: stringList.min(1, { error: 'name at least one audience' }).default(['envoy-sds']),
      tokenCacheSeconds: seconds(30),
      reviewIntervalSeconds: seconds(60),
      spiffeTrustDomain: matching(/^[a-z0-9._-]+$/, (d) => `"${d}" is not a SPIFFE trust domain`).nullish(),
    }),
  ),
  authorization: section(
    z.strictObject({ allowCacheSeconds: seconds(30), denyCacheSeconds: seconds(5), staleIfErrorSeconds: seconds(300) }),
  ),
  events: section(z.strictObject({ enabled: z.boolean().default(true), reportingInstance: nonEmpty.nullish() })),
  deliveryStatus: section(
    z.strictObject({
      enabled: z.boolean().default(true),
      namespace: nonEmpty.nullish(),
      publishSeconds: seconds(5),
      replica: nonEmpty.nullish(),
    }),
  ),
  // Off unless set: each needs its CRDs or API served, and RBAC to list them.
  gatewayApi: z.boolean().nullish(),
  clusterTrustBundles: z.boolean().nullish(),
  // true: the defaults; a mapping: either set.
  sidecar: z.union([z.boolean(), z.strictObject({ tokenFile: nonEmpty.nullish(), namespace: nonEmpty.nullish() })]).nullish(),
  caBundleHold: z
    .array(
      z.strictObject({
        names: stringList.min(1, {
          error: 'name at least one secret (e.g. "configmap://gateway/backend-trust", "kubernetes://apps/*-cacert")',
        }),
        holdSeconds: z
          .number({ error: 'say how long the union may be held at most (seconds)' })
          .positive({ error: 'must be a positive number of seconds' }),
        release: z.enum(['time', 'acknowledged'], { error: 'must be time or acknowledged' }).default('time'),
      }),
    )
    .max(1000)
    .default([]),
});

export function parseKubernetesConfig(raw: unknown): KubernetesConfig {
  const c = checkSchema(kubernetesSection, raw === null || raw === true ? {} : raw, AT);
  const { watch, authentication: authn, authorization: authz, events, deliveryStatus: delivery } = c;
  if (watch.backoffMaxSeconds < watch.backoffInitialSeconds)
    throw new ConfigError(`${AT}.watch.backoffMaxSeconds`, 'must not be below backoffInitialSeconds');
  const deliveryNamespace = delivery.namespace ?? podNamespace();
  const trustDomain = authn.spiffeTrustDomain;

  return {
    caBundleHold: c.caBundleHold.map((r) => ({ names: r.names, holdForMs: Math.round(r.holdSeconds * 1000), release: r.release })),
    ...(c.kubeconfig ? { kubeconfig: resolve(c.kubeconfig) } : {}),
    ...(c.context ? { context: c.context } : {}),
    namespaces: [...new Set(c.namespaces)],
    configMapKeys: c.configMapKeys,
    requestTimeoutMs: c.requestTimeoutSeconds,
    watch: {
      silentMs: watch.silentSeconds,
      backoffInitialMs: watch.backoffInitialSeconds,
      backoffMaxMs: watch.backoffMaxSeconds,
      pageSize: watch.pageSize,
    },
    authentication: {
      audiences: authn.audiences,
      tokenCacheMs: authn.tokenCacheSeconds,
      reviewIntervalMs: authn.reviewIntervalSeconds,
      ...(trustDomain ? { spiffeTrustDomain: trustDomain } : {}),
    },
    authorization: {
      allowCacheMs: authz.allowCacheSeconds,
      denyCacheMs: authz.denyCacheSeconds,
      staleIfErrorMs: authz.staleIfErrorSeconds,
    },
    events: {
      enabled: events.enabled,
      // The pod name (downward API) tells replicas' events apart.
      reportingInstance: events.reportingInstance ?? process.env['POD_NAME'] ?? 'envoy-sds',
    },
    deliveryStatus: {
      enabled: delivery.enabled && deliveryNamespace !== undefined,
      ...(deliveryNamespace ? { namespace: deliveryNamespace } : {}),
      publishMs: delivery.publishSeconds,
      replica: delivery.replica ?? process.env['POD_NAME'] ?? hostname(),
    },
    gatewayApi: c.gatewayApi ?? false,
    clusterTrustBundles: c.clusterTrustBundles ?? false,
    ...sidecar(c.sidecar),
  };
}

const DEFAULT_SIDECAR_TOKEN = '/var/run/secrets/envoy-sds/token';

function sidecar(s: z.output<typeof kubernetesSection>['sidecar']): Pick<KubernetesConfig, 'sidecar'> {
  if (s === undefined || s === null || s === false) return {};
  const o = s === true ? {} : s;
  const namespace = o.namespace ?? podNamespace();
  if (!namespace)
    throw new ConfigError(
      `${AT}.sidecar.namespace`,
      "the pod's namespace is not known ($POD_NAMESPACE unset, no ServiceAccount mount): set it",
    );
  return { sidecar: { tokenFile: resolve(o.tokenFile ?? DEFAULT_SIDECAR_TOKEN), namespace } };
}

/** The pod's namespace: the downward API's $POD_NAMESPACE, else the ServiceAccount mount. */
function podNamespace(): string | undefined {
  if (process.env['POD_NAMESPACE']) return process.env['POD_NAMESPACE'];
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
