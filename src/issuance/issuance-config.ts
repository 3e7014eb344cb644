// The `issuance:` section of the config file: the resources (inline, or in multi-document
// YAML files as `kubectl apply -f` takes them) and the engine's few settings.
//
//   issuance:
//     resourceFiles: [/etc/envoy-sds/issuance.yaml]
//     resources: [ { apiVersion: envoy-sds.io/v1alpha1, kind: Certificate, ... } ]
//     clusterResourceNamespace: cert-manager
//     backoff: { initial: 5m, max: 1h }
//     renewalJitter: 0.1
//     maxConcurrentIssuances: 5
//     acme: { pollInterval: 1s, maxPollInterval: 10s, timeout: 10m }
//     persistence: kubernetes       # or files; default kubernetes when the config has a
//                                   # `kubernetes:` section, else files (the data directory)
//     leaderElection:               # Kubernetes persistence only: one replica issues
//       enabled: true               # default true
//       namespace: envoy-sds        # default $POD_NAMESPACE, else the pod's ServiceAccount
//                                   # namespace, else "default"
//       leaseName: envoy-sds-issuance
//       identity: pod-a             # default $POD_NAME, else <hostname>-<pid>
//       leaseDuration: 15s
//       renewDeadline: 10s          # default 2/3 of leaseDuration; renewals every half of it
//     customResources: true         # Kubernetes persistence only: Issuers, ClusterIssuers and
//                                   # Certificates are read (and watched) from the API server as
//                                   # envoy-sds.io/v1alpha1 custom resources (deploy/crds/), and
//                                   # each Certificate's status goes to its status subresource
//     shims:                        # customResources only: Certificates for annotated objects
//       gateways: true              # Gateways annotated envoy-sds.io/issuer or /cluster-issuer
//       ingresses: true             # Ingresses, likewise
//       certManagerAnnotations: false  # cert-manager.io/issuer too; refused while cert-manager's CRDs are served

import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigError } from '../config/config-error.js';
import { parseGoDuration } from './duration.js';
import { arr, known, obj, optInt, optObj, optStr, str, strList, type Doc } from './fields.js';
import { dnsLabelName, hasSubject, parseCertificate } from './parse-certificate.js';
import { parseIssuer } from './parse-issuer.js';
import { API_VERSION, caSecretName, issuerId, type CertificateResource, type IssuerResource } from './resources.js';

export interface IssuanceSettings {
  /** First retry delay after a failed issuance; doubles per failure up to `backoffMaxMs`. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Renewal starts up to this fraction of renewBefore early, spread per certificate. */
  renewalJitter: number;
  /** Issuances running at once, across all certificates. */
  maxConcurrentIssuances: number;
  acme: { pollIntervalMs: number; maxPollIntervalMs: number; timeoutMs: number };
}

export interface LeaderElectionConfig {
  namespace: string;
  leaseName: string;
  identity?: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
}

export interface IssuanceConfig {
  issuers: Map<string, IssuerResource>;
  certificates: CertificateResource[];
  settings: IssuanceSettings;
  /** Where issued Secrets and the engine's state go. */
  persistence: 'files' | 'kubernetes';
  /** Kubernetes persistence with leader election on (the default there). */
  leaderElection?: LeaderElectionConfig;
  /**
   * Set when the resources are custom resources read from the API server (then `issuers`
   * and `certificates` start empty): what parsing them needs.
   */
  customResources?: { clusterResourceNamespace: string; baseDir: string };
  /** gateway-shim and ingress-shim (custom resources only; see shims/). */
  shims?: { gateways: boolean; ingresses: boolean; certManagerAnnotations: boolean };
}

export const DEFAULT_SETTINGS: IssuanceSettings = {
  backoffInitialMs: 5 * 60_000,
  backoffMaxMs: 60 * 60_000,
  renewalJitter: 0.1,
  maxConcurrentIssuances: 5,
  acme: { pollIntervalMs: 1000, maxPollIntervalMs: 10_000, timeoutMs: 10 * 60_000 },
};

export interface IssuanceConfigContext {
  /** Relative paths in the section resolve against this. */
  baseDir: string;
  /** SDS names already bound in the config file (`secrets:`), which issued certificates must not reuse. */
  reservedNames?: readonly string[];
  /** The config has a `kubernetes:` section: persistence defaults to kubernetes. */
  kubernetes?: boolean;
}

export function parseIssuanceConfig(raw: unknown, ctx: IssuanceConfigContext): IssuanceConfig {
  const at = 'issuance';
  const section = obj(raw ?? {}, at);
  known(section, at, ['resources', 'resourceFiles', 'clusterResourceNamespace', 'backoff', 'renewalJitter', 'maxConcurrentIssuances', 'acme', 'persistence', 'leaderElection', 'customResources', 'shims']);
  const clusterResourceNamespace = optStr(section['clusterResourceNamespace'], `${at}.clusterResourceNamespace`) ?? 'cert-manager';

  const objects: Array<{ doc: unknown; at: string }> = [];
  if (section['resources'] !== undefined && section['resources'] !== null) {
    arr(section['resources'], `${at}.resources`).forEach((doc, i) => objects.push({ doc, at: `${at}.resources[${i}]` }));
  }
  strList(section['resourceFiles'], `${at}.resourceFiles`).forEach((file, i) => {
    const path = isAbsolute(file) ? file : resolve(ctx.baseDir, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`${at}.resourceFiles[${i}]`, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const docs = parseAllDocuments(text);
    if (!Array.isArray(docs)) throw new ConfigError(`${at}.resourceFiles[${i}]`, `${path} is empty`);
    docs.forEach((d, j) => {
      if (d.errors.length > 0) throw new ConfigError(`${path} (document ${j + 1})`, `not valid YAML: ${d.errors[0]!.message.split('\n')[0]}`);
      const doc: unknown = d.toJS();
      if (doc !== null && doc !== undefined) objects.push({ doc, at: `${path} (document ${j + 1})` });
    });
  });

  const persistence = parsePersistence(section, at, ctx.kubernetes === true);
  const { issuers, certificates } = parseIssuanceResources(objects, { ...ctx, clusterResourceNamespace, namespacedSecretNames: persistence === 'kubernetes' });
  const leaderElection = persistence === 'kubernetes' ? parseLeaderElection(section['leaderElection'], `${at}.leaderElection`) : undefined;
  if (persistence === 'files' && section['leaderElection'] !== undefined) throw new ConfigError(`${at}.leaderElection`, 'needs persistence: kubernetes (replicas share issued Secrets only through Kubernetes)');
  const cr = section['customResources'];
  if (cr !== undefined && typeof cr !== 'boolean') throw new ConfigError(`${at}.customResources`, 'must be true or false');
  if (cr === true) {
    if (persistence !== 'kubernetes') throw new ConfigError(`${at}.customResources`, 'needs persistence: kubernetes');
    if (objects.length > 0) throw new ConfigError(`${at}.customResources`, 'resources come from the API server: remove resources and resourceFiles');
  }
  return {
    issuers,
    certificates,
    settings: parseSettings(section, at),
    persistence,
    ...(leaderElection ? { leaderElection } : {}),
    ...(cr === true ? { customResources: { clusterResourceNamespace, baseDir: ctx.baseDir } } : {}),
    ...parseShims(section['shims'], `${at}.shims`, cr === true),
  };
}

function parseShims(raw: unknown, at: string, customResources: boolean): Pick<IssuanceConfig, 'shims'> {
  if (raw === undefined || raw === null) return {};
  const s = obj(raw, at);
  known(s, at, ['gateways', 'ingresses', 'certManagerAnnotations']);
  const flag = (k: string): boolean => {
    const v = s[k] ?? false;
    if (typeof v !== 'boolean') throw new ConfigError(`${at}.${k}`, 'must be true or false');
    return v;
  };
  const shims = { gateways: flag('gateways'), ingresses: flag('ingresses'), certManagerAnnotations: flag('certManagerAnnotations') };
  if ((shims.gateways || shims.ingresses) && !customResources) throw new ConfigError(at, 'needs customResources: true (the shims write Certificate custom resources)');
  return { shims };
}

/** One resource document and where it came from (for error paths). */
export interface ResourceDocument {
  doc: unknown;
  at: string;
}

/**
 * Issuers, ClusterIssuers and Certificates from k8s-style documents (a config file's, or
 * custom resources read from the API server), with every reference and SDS name checked.
 */
export function parseIssuanceResources(
  objects: readonly ResourceDocument[],
  ctx: IssuanceConfigContext & {
    clusterResourceNamespace: string;
    /** Kubernetes persistence: Secrets (and SDS names) are per namespace, and `secrets:` names do not collide. */
    namespacedSecretNames?: boolean;
    /** Issuers parsed elsewhere that Certificates may name (custom resources whose spec is invalid). */
    extraIssuers?: ReadonlyMap<string, IssuerResource>;
  },
): { issuers: Map<string, IssuerResource>; certificates: CertificateResource[] } {
  const { clusterResourceNamespace } = ctx;
  const issuers = new Map<string, IssuerResource>();
  const certificates: CertificateResource[] = [];
  const certIds = new Set<string>();
  for (const { doc, at: p } of objects) {
    const o = obj(doc, p);
    known(o, p, ['apiVersion', 'kind', 'metadata', 'spec'], ['status']);
    const apiVersion = str(o['apiVersion'], `${p}.apiVersion`);
    if (apiVersion !== API_VERSION) {
      const hint = apiVersion.startsWith('cert-manager.io/') ? ` (cert-manager YAML works here with apiVersion changed to ${API_VERSION})` : '';
      throw new ConfigError(`${p}.apiVersion`, `must be ${API_VERSION}, got "${apiVersion}"${hint}`);
    }
    const kind = str(o['kind'], `${p}.kind`);
    const meta = obj(o['metadata'], `${p}.metadata`);
    known(meta, `${p}.metadata`, ['name', 'namespace', 'labels', 'annotations'], ['uid', 'resourceVersion', 'generation', 'creationTimestamp']);
    const name = dnsLabelName(meta['name'], `${p}.metadata.name`);
    const labels = stringMap(meta['labels'], `${p}.metadata.labels`);
    stringMap(meta['annotations'], `${p}.metadata.annotations`);
    const namespace = meta['namespace'] === undefined || meta['namespace'] === null ? 'default' : dnsLabelName(meta['namespace'], `${p}.metadata.namespace`);
    switch (kind) {
      case 'Issuer':
      case 'ClusterIssuer': {
        if (kind === 'ClusterIssuer' && meta['namespace'] !== undefined) throw new ConfigError(`${p}.metadata.namespace`, 'a ClusterIssuer has no namespace');
        const ns = kind === 'Issuer' ? namespace : undefined;
        const id = issuerId(kind, name, ns);
        if (issuers.has(id)) throw new ConfigError(`${p}.metadata.name`, `${id} is declared twice`);
        issuers.set(id, parseIssuer(kind, name, ns, o['spec'], p, { clusterResourceNamespace, baseDir: ctx.baseDir }));
        break;
      }
      case 'Certificate': {
        const cert = parseCertificate(name, namespace, labels, o['spec'], p);
        if (certIds.has(cert.id)) throw new ConfigError(`${p}.metadata.name`, `Certificate ${cert.id} is declared twice`);
        certIds.add(cert.id);
        certificates.push(cert);
        break;
      }
      default:
        throw new ConfigError(`${p}.kind`, `must be Issuer, ClusterIssuer or Certificate (got "${kind}")`);
    }
  }

  // References and SDS names are checked once every object is read: an Issuer may
  // follow the Certificates that use it in a file.
  const sdsNames = new Map<string, string>();
  if (!ctx.namespacedSecretNames) for (const name of ctx.reservedNames ?? []) sdsNames.set(name, `secrets entry "${name}"`);
  for (const cert of certificates) {
    const p = `Certificate ${cert.id}`;
    const ref = cert.spec.issuerRef;
    const id = issuerId(ref.kind, ref.name, cert.namespace);
    const issuer = issuers.get(id) ?? ctx.extraIssuers?.get(id);
    if (!issuer) {
      const where = ref.kind === 'Issuer' ? ` in namespace ${cert.namespace}` : '';
      throw new ConfigError(`${p}.spec.issuerRef`, `${ref.kind} "${ref.name}"${where} is not declared`);
    }
    if (issuer.spec.type === 'selfSigned' && !hasSubject(cert.spec.commonName, cert.spec.subject)) {
      // Its issuer name is its subject, which RFC 5280 4.1.2.4 says must not be empty.
      throw new ConfigError(`${p}.spec.subject`, 'a self-signed certificate needs a subject: set commonName or subject');
    }
    if (issuer.spec.type === 'acme') {
      const s = cert.spec;
      if (s.isCA) throw new ConfigError(`${p}.spec.isCA`, 'an ACME issuer cannot issue CA certificates');
      if (s.ipAddresses.length + s.uris.length + s.emailAddresses.length > 0) {
        throw new ConfigError(`${p}.spec`, 'an ACME issuer certifies DNS names only: remove ipAddresses, uris and emailAddresses');
      }
      if (s.dnsNames.length === 0) throw new ConfigError(`${p}.spec.dnsNames`, 'an ACME certificate needs at least one DNS name');
      if (s.commonName !== undefined && !s.dnsNames.includes(s.commonName)) {
        throw new ConfigError(`${p}.spec.commonName`, 'for an ACME issuer the commonName must also be listed in dnsNames');
      }
    }
    const sdsName = (name: string) => (ctx.namespacedSecretNames ? `${cert.namespace}/${name}` : name);
    for (const name of [cert.spec.secretName, caSecretName(cert.spec.secretName)].map(sdsName)) {
      const other = sdsNames.get(name);
      if (other) throw new ConfigError(`${p}.spec.secretName`, `SDS name "${name}" is already used by ${other}`);
    }
    sdsNames.set(sdsName(cert.spec.secretName), `Certificate ${cert.id}`);
    sdsNames.set(sdsName(caSecretName(cert.spec.secretName)), `Certificate ${cert.id}`);
  }

  return { issuers, certificates };
}

function parsePersistence(section: Doc, at: string, kubernetes: boolean): 'files' | 'kubernetes' {
  const p = optStr(section['persistence'], `${at}.persistence`) ?? (kubernetes ? 'kubernetes' : 'files');
  if (p !== 'files' && p !== 'kubernetes') throw new ConfigError(`${at}.persistence`, `must be "files" or "kubernetes" (got "${p}")`);
  if (p === 'kubernetes' && !kubernetes) throw new ConfigError(`${at}.persistence`, 'kubernetes persistence needs a `kubernetes:` section (the API server to write to)');
  return p;
}

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function parseLeaderElection(raw: unknown, at: string): LeaderElectionConfig | undefined {
  const o = optObj(raw, at) ?? {};
  known(o, at, ['enabled', 'namespace', 'leaseName', 'identity', 'leaseDuration', 'renewDeadline']);
  if (o['enabled'] !== undefined && typeof o['enabled'] !== 'boolean') throw new ConfigError(`${at}.enabled`, 'must be true or false');
  if (o['enabled'] === false) return undefined;
  // The Lease lives beside the replicas: RBAC grants Leases in their own namespace only.
  const namespace =
    optStr(o['namespace'], `${at}.namespace`) ??
    (process.env['POD_NAMESPACE'] || (existsSync(SA_NAMESPACE_FILE) ? readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() : '') || 'default');
  const leaseName = optStr(o['leaseName'], `${at}.leaseName`) ?? 'envoy-sds-issuance';
  const identity = optStr(o['identity'], `${at}.identity`);
  const leaseDurationMs = o['leaseDuration'] !== undefined ? positiveDuration(o['leaseDuration'], `${at}.leaseDuration`) : 15_000;
  if (leaseDurationMs < 1000 || leaseDurationMs % 1000 !== 0) throw new ConfigError(`${at}.leaseDuration`, 'must be whole seconds, at least 1s (the Lease records seconds)');
  const renewDeadlineMs = o['renewDeadline'] !== undefined ? positiveDuration(o['renewDeadline'], `${at}.renewDeadline`) : Math.floor((leaseDurationMs * 2) / 3);
  if (renewDeadlineMs >= leaseDurationMs) throw new ConfigError(`${at}.renewDeadline`, 'must be shorter than leaseDuration (the leader steps down before others may take over)');
  return { namespace, leaseName, leaseDurationMs, renewDeadlineMs, ...(identity ? { identity } : {}) };
}

function parseSettings(section: Doc, at: string): IssuanceSettings {
  const settings: IssuanceSettings = { ...DEFAULT_SETTINGS, acme: { ...DEFAULT_SETTINGS.acme } };
  const b = optObj(section['backoff'], `${at}.backoff`);
  if (b) {
    known(b, `${at}.backoff`, ['initial', 'max']);
    if (b['initial'] !== undefined) settings.backoffInitialMs = positiveDuration(b['initial'], `${at}.backoff.initial`);
    if (b['max'] !== undefined) settings.backoffMaxMs = positiveDuration(b['max'], `${at}.backoff.max`);
    if (settings.backoffMaxMs < settings.backoffInitialMs) throw new ConfigError(`${at}.backoff.max`, 'must not be shorter than backoff.initial');
  }
  if (section['renewalJitter'] !== undefined) {
    const j = section['renewalJitter'];
    if (typeof j !== 'number' || !(j >= 0 && j <= 0.5)) throw new ConfigError(`${at}.renewalJitter`, 'must be a number from 0 to 0.5 (a fraction of renewBefore)');
    settings.renewalJitter = j;
  }
  settings.maxConcurrentIssuances = optInt(section['maxConcurrentIssuances'], `${at}.maxConcurrentIssuances`, 1, 1000) ?? settings.maxConcurrentIssuances;
  const a = optObj(section['acme'], `${at}.acme`);
  if (a) {
    known(a, `${at}.acme`, ['pollInterval', 'maxPollInterval', 'timeout']);
    if (a['pollInterval'] !== undefined) settings.acme.pollIntervalMs = positiveDuration(a['pollInterval'], `${at}.acme.pollInterval`);
    if (a['maxPollInterval'] !== undefined) settings.acme.maxPollIntervalMs = positiveDuration(a['maxPollInterval'], `${at}.acme.maxPollInterval`);
    if (a['timeout'] !== undefined) settings.acme.timeoutMs = positiveDuration(a['timeout'], `${at}.acme.timeout`);
  }
  return settings;
}

function positiveDuration(v: unknown, at: string): number {
  const text = str(v, at);
  const ms = parseGoDuration(text);
  if (ms === undefined || ms <= 0) throw new ConfigError(at, `"${text}" is not a positive duration (e.g. "250ms", "5m", "1h")`);
  return ms;
}

function stringMap(v: unknown, at: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(optObj(v, at) ?? {})) out[k] = str(x, `${at}.${k}`);
  return out;
}
