import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from './config-error.js';

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
}

const AT = 'kubernetes';

export function parseKubernetesConfig(raw: unknown): KubernetesConfig {
  const root = raw === null || raw === true ? {} : obj(raw, AT);
  known(root, AT, ['kubeconfig', 'context', 'namespaces', 'configMapKeys', 'requestTimeoutSeconds', 'watch', 'authentication', 'authorization', 'events', 'deliveryStatus', 'gatewayApi', 'clusterTrustBundles', 'sidecar']);
  const kubeconfig = optStr(root['kubeconfig'], `${AT}.kubeconfig`);
  const context = optStr(root['context'], `${AT}.context`);
  const namespaces = strList(root['namespaces'] ?? [], `${AT}.namespaces`);
  namespaces.forEach((ns, i) => {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) throw new ConfigError(`${AT}.namespaces[${i}]`, `"${ns}" is not a namespace name`);
  });
  const configMapKeys = strList(root['configMapKeys'] ?? ['ca.crt'], `${AT}.configMapKeys`);
  if (configMapKeys.length === 0) throw new ConfigError(`${AT}.configMapKeys`, 'name at least one key');

  const watch = section(root, 'watch', ['silentSeconds', 'backoffInitialSeconds', 'backoffMaxSeconds', 'pageSize']);
  const authn = section(root, 'authentication', ['audiences', 'tokenCacheSeconds', 'reviewIntervalSeconds', 'spiffeTrustDomain']);
  const authz = section(root, 'authorization', ['allowCacheSeconds', 'denyCacheSeconds', 'staleIfErrorSeconds']);
  const events = section(root, 'events', ['enabled', 'reportingInstance']);
  const delivery = section(root, 'deliveryStatus', ['enabled', 'namespace', 'publishSeconds', 'replica']);
  const deliveryEnabled = delivery['enabled'] ?? true;
  if (typeof deliveryEnabled !== 'boolean') throw new ConfigError(`${AT}.deliveryStatus.enabled`, 'must be true or false');
  const deliveryNamespace = optStr(delivery['namespace'], `${AT}.deliveryStatus.namespace`) ?? podNamespace();

  const backoffInitialMs = seconds(watch['backoffInitialSeconds'], 0.5, `${AT}.watch.backoffInitialSeconds`);
  const backoffMaxMs = seconds(watch['backoffMaxSeconds'], 30, `${AT}.watch.backoffMaxSeconds`);
  if (backoffMaxMs < backoffInitialMs) throw new ConfigError(`${AT}.watch.backoffMaxSeconds`, 'must not be below backoffInitialSeconds');
  const audiences = strList(authn['audiences'] ?? ['envoy-sds'], `${AT}.authentication.audiences`);
  if (audiences.length === 0) throw new ConfigError(`${AT}.authentication.audiences`, 'name at least one audience');
  const trustDomain = optStr(authn['spiffeTrustDomain'], `${AT}.authentication.spiffeTrustDomain`);
  if (trustDomain !== undefined && !/^[a-z0-9._-]+$/.test(trustDomain)) {
    throw new ConfigError(`${AT}.authentication.spiffeTrustDomain`, `"${trustDomain}" is not a SPIFFE trust domain`);
  }
  // Small pages: each is streamed item by item, but the API server builds a whole page in
  // its own memory, and a continue token that expires costs one page, not five hundred.
  const pageSize = watch['pageSize'] ?? 100;
  if (typeof pageSize !== 'number' || !Number.isInteger(pageSize) || pageSize <= 0) {
    throw new ConfigError(`${AT}.watch.pageSize`, 'must be a positive integer');
  }
  const gatewayApi = flag(root['gatewayApi'], `${AT}.gatewayApi`);
  const clusterTrustBundles = flag(root['clusterTrustBundles'], `${AT}.clusterTrustBundles`);
  const enabled = events['enabled'] ?? true;
  if (typeof enabled !== 'boolean') throw new ConfigError(`${AT}.events.enabled`, 'must be true or false');

  return {
    ...(kubeconfig ? { kubeconfig: resolve(kubeconfig) } : {}),
    ...(context ? { context } : {}),
    namespaces: [...new Set(namespaces)],
    configMapKeys,
    requestTimeoutMs: seconds(root['requestTimeoutSeconds'], 10, `${AT}.requestTimeoutSeconds`),
    watch: {
      silentMs: seconds(watch['silentSeconds'], 120, `${AT}.watch.silentSeconds`),
      backoffInitialMs,
      backoffMaxMs,
      pageSize,
    },
    authentication: {
      audiences,
      tokenCacheMs: seconds(authn['tokenCacheSeconds'], 30, `${AT}.authentication.tokenCacheSeconds`),
      reviewIntervalMs: seconds(authn['reviewIntervalSeconds'], 60, `${AT}.authentication.reviewIntervalSeconds`),
      ...(trustDomain ? { spiffeTrustDomain: trustDomain } : {}),
    },
    authorization: {
      allowCacheMs: seconds(authz['allowCacheSeconds'], 30, `${AT}.authorization.allowCacheSeconds`),
      denyCacheMs: seconds(authz['denyCacheSeconds'], 5, `${AT}.authorization.denyCacheSeconds`),
      staleIfErrorMs: seconds(authz['staleIfErrorSeconds'], 300, `${AT}.authorization.staleIfErrorSeconds`),
    },
    events: {
      enabled,
      // The pod name (downward API) tells replicas' events apart.
      reportingInstance: optStr(events['reportingInstance'], `${AT}.events.reportingInstance`) ?? process.env['POD_NAME'] ?? 'envoy-sds',
    },
    deliveryStatus: {
      enabled: deliveryEnabled && deliveryNamespace !== undefined,
      ...(deliveryNamespace ? { namespace: deliveryNamespace } : {}),
      publishMs: seconds(delivery['publishSeconds'], 5, `${AT}.deliveryStatus.publishSeconds`),
      replica: optStr(delivery['replica'], `${AT}.deliveryStatus.replica`) ?? process.env['POD_NAME'] ?? hostname(),
    },
    gatewayApi,
    clusterTrustBundles,
    ...parseSidecar(root['sidecar']),
  };
}

const DEFAULT_SIDECAR_TOKEN = '/var/run/secrets/envoy-sds/token';

function parseSidecar(raw: unknown): Pick<KubernetesConfig, 'sidecar'> {
  if (raw === undefined || raw === null || raw === false) return {};
  const at = `${AT}.sidecar`;
  const s = raw === true ? {} : obj(raw, at);
  known(s, at, ['tokenFile', 'namespace']);
  const tokenFile = resolve(optStr(s['tokenFile'], `${at}.tokenFile`) ?? DEFAULT_SIDECAR_TOKEN);
  const namespace = optStr(s['namespace'], `${at}.namespace`) ?? podNamespace();
  if (!namespace) throw new ConfigError(`${at}.namespace`, 'the pod\'s namespace is not known ($POD_NAMESPACE unset, no ServiceAccount mount): set it');
  return { sidecar: { tokenFile, namespace } };
}

/** Off unless set: each needs its CRDs or API served, and RBAC to list them. */
function flag(v: unknown, at: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new ConfigError(at, 'must be true or false');
  return v;
}

function section(root: Record<string, unknown>, key: string, keys: string[]): Record<string, unknown> {
  if (root[key] === undefined || root[key] === null) return {};
  const o = obj(root[key], `${AT}.${key}`);
  known(o, `${AT}.${key}`, keys);
  return o;
}

function obj(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(at, 'must be a mapping');
  return v as Record<string, unknown>;
}

function known(o: Record<string, unknown>, at: string, keys: string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new ConfigError(`${at}.${k}`, `unknown field (expected one of: ${keys.join(', ')})`);
  }
}

function optStr(v: unknown, at: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(at, 'must be a non-empty string');
  return v;
}

function strList(v: unknown, at: string): string[] {
  if (!Array.isArray(v)) throw new ConfigError(at, 'must be a list');
  return v.map((x, i) => {
    if (typeof x !== 'string' || x.length === 0) throw new ConfigError(`${at}[${i}]`, 'must be a non-empty string');
    return x;
  });
}

/** Seconds in the file (fractions allowed), milliseconds inside. */
function seconds(v: unknown, dflt: number, at: string): number {
  if (v === undefined || v === null) return dflt * 1000;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(at, 'must be a positive number of seconds');
  return Math.round(v * 1000);
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
