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
import * as z from 'zod';
import { ConfigError } from '../config/config-error.js';
import { checkSchema } from '../config/schema/check.js';
import { intFrom, nonEmpty, stringList } from '../config/schema/fields.js';
import { parseGoDuration } from './duration.js';
import { hasSubject, parseCertificate } from './parse-certificate.js';
import { parseIssuer } from './parse-issuer.js';
import { caSecretName, issuerId, type CertificateResource, type IssuerResource } from './resources.js';
import { resourceEnvelope } from './schema/resource-envelope.js';
import { DEFAULT_CA_ROTATION, type CaRotationConfig } from './ca-rotation/ca-rotations.js';

export interface IssuanceSettings {
  /** First retry delay after a failed issuance; doubles per failure up to `backoffMaxMs`. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Renewal starts up to this fraction of renewBefore early, spread per certificate. */
  renewalJitter: number;
  /** Issuances running at once, across all certificates. */
  maxConcurrentIssuances: number;
  acme: { pollIntervalMs: number; maxPollIntervalMs: number; timeoutMs: number };
  /** Staged CA rotations (ca-rotation/). */
  caRotation: CaRotationConfig;
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
  caRotation: DEFAULT_CA_ROTATION,
};

export interface IssuanceConfigContext {
  /** Relative paths in the section resolve against this. */
  baseDir: string;
  /** SDS names already bound in the config file (`secrets:`), which issued certificates must not reuse. */
  reservedNames?: readonly string[];
  /** The config has a `kubernetes:` section: persistence defaults to kubernetes. */
  kubernetes?: boolean;
}

const positiveDuration = z.string().refine((v) => (parseGoDuration(v) ?? 0) > 0, {
  error: (iss) => `${JSON.stringify(iss.input)} is not a positive duration (e.g. "250ms", "5m", "1h")`,
});

const JITTER = 'must be a number from 0 to 0.5 (a fraction of renewBefore)';

const issuanceSection = z.strictObject({
  resources: z.array(z.unknown()).nullable().optional(),
  resourceFiles: stringList.nullable().optional(),
  clusterResourceNamespace: nonEmpty.nullable().optional(),
  backoff: z.strictObject({ initial: positiveDuration.optional(), max: positiveDuration.optional() }).nullable().optional(),
  renewalJitter: z.number({ error: JITTER }).min(0, { error: JITTER }).max(0.5, { error: JITTER }).optional(),
  maxConcurrentIssuances: intFrom(1, 1000).nullable().optional(),
  acme: z
    .strictObject({
      pollInterval: positiveDuration.optional(),
      maxPollInterval: positiveDuration.optional(),
      timeout: positiveDuration.optional(),
    })
    .nullable()
    .optional(),
  persistence: z
    .enum(['files', 'kubernetes'], { error: (iss) => `must be "files" or "kubernetes" (got ${JSON.stringify(iss.input)})` })
    .nullable()
    .optional(),
  leaderElection: z
    .strictObject({
      enabled: z.boolean().optional(),
      namespace: nonEmpty.nullable().optional(),
      leaseName: nonEmpty.nullable().optional(),
      identity: nonEmpty.nullable().optional(),
      leaseDuration: positiveDuration.optional(),
      renewDeadline: positiveDuration.optional(),
    })
    .nullable()
    .optional(),
  customResources: z.boolean().optional(),
  caRotation: z
    .strictObject({
      ackTimeout: positiveDuration.optional(),
      reissueWindow: positiveDuration.optional(),
      checkInterval: positiveDuration.optional(),
      resumeGrace: positiveDuration.optional(),
      onCAKeyRotation: z
        .enum(['Staged', 'Immediate'], { error: (iss) => `must be Staged or Immediate (got ${JSON.stringify(iss.input)})` })
        .optional(),
    })
    .nullable()
    .optional(),
  shims: z
    .strictObject({
      gateways: z.boolean().default(false),
      ingresses: z.boolean().default(false),
      certManagerAnnotations: z.boolean().default(false),
    })
    .nullable()
    .optional(),
});

type IssuanceSection = z.output<typeof issuanceSection>;

export function parseIssuanceConfig(raw: unknown, ctx: IssuanceConfigContext): IssuanceConfig {
  const at = 'issuance';
  const section = checkSchema(issuanceSection, raw ?? {}, at);
  const clusterResourceNamespace = section.clusterResourceNamespace ?? 'cert-manager';

  const objects: Array<{ doc: unknown; at: string }> = [];
  (section.resources ?? []).forEach((doc, i) => objects.push({ doc, at: `${at}.resources[${i}]` }));
  (section.resourceFiles ?? []).forEach((file, i) => {
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
      if (d.errors.length > 0)
        throw new ConfigError(`${path} (document ${j + 1})`, `not valid YAML: ${d.errors[0]!.message.split('\n')[0]}`);
      const doc: unknown = d.toJS();
      if (doc !== null && doc !== undefined) objects.push({ doc, at: `${path} (document ${j + 1})` });
    });
  });

  const persistence = section.persistence ?? (ctx.kubernetes === true ? 'kubernetes' : 'files');
  if (persistence === 'kubernetes' && ctx.kubernetes !== true)
    throw new ConfigError(`${at}.persistence`, 'kubernetes persistence needs a `kubernetes:` section (the API server to write to)');
  const { issuers, certificates } = parseIssuanceResources(objects, {
    ...ctx,
    clusterResourceNamespace,
    namespacedSecretNames: persistence === 'kubernetes',
  });
  const leaderElection =
    persistence === 'kubernetes' ? parseLeaderElection(section.leaderElection ?? {}, `${at}.leaderElection`) : undefined;
  if (persistence === 'files' && section.leaderElection !== undefined)
    throw new ConfigError(`${at}.leaderElection`, 'needs persistence: kubernetes (replicas share issued Secrets only through Kubernetes)');
  const cr = section.customResources;
  if (cr === true) {
    if (persistence !== 'kubernetes') throw new ConfigError(`${at}.customResources`, 'needs persistence: kubernetes');
    if (objects.length > 0)
      throw new ConfigError(`${at}.customResources`, 'resources come from the API server: remove resources and resourceFiles');
  }
  return {
    issuers,
    certificates,
    settings: parseSettings(section, at),
    persistence,
    ...(leaderElection ? { leaderElection } : {}),
    ...(cr === true ? { customResources: { clusterResourceNamespace, baseDir: ctx.baseDir } } : {}),
    ...shimsOf(section.shims, `${at}.shims`, cr === true),
  };
}

function shimsOf(shims: IssuanceSection['shims'], at: string, customResources: boolean): Pick<IssuanceConfig, 'shims'> {
  if (!shims) return {};
  if ((shims.gateways || shims.ingresses) && !customResources)
    throw new ConfigError(at, 'needs customResources: true (the shims write Certificate custom resources)');
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
    const { kind, metadata: meta, spec } = checkSchema(resourceEnvelope, doc, p);
    const name = meta.name;
    const labels = { ...meta.labels };
    const namespace = meta.namespace ?? 'default';
    switch (kind) {
      case 'Issuer':
      case 'ClusterIssuer': {
        if (kind === 'ClusterIssuer' && meta.namespace !== undefined)
          throw new ConfigError(`${p}.metadata.namespace`, 'a ClusterIssuer has no namespace');
        const ns = kind === 'Issuer' ? namespace : undefined;
        const id = issuerId(kind, name, ns);
        if (issuers.has(id)) throw new ConfigError(`${p}.metadata.name`, `${id} is declared twice`);
        issuers.set(id, parseIssuer(kind, name, ns, spec, p, { clusterResourceNamespace, baseDir: ctx.baseDir }));
        break;
      }
      case 'Certificate': {
        const cert = parseCertificate(name, namespace, labels, spec, p);
        if (certIds.has(cert.id)) throw new ConfigError(`${p}.metadata.name`, `Certificate ${cert.id} is declared twice`);
        certIds.add(cert.id);
        certificates.push(cert);
        break;
      }
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

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function parseLeaderElection(o: NonNullable<IssuanceSection['leaderElection']>, at: string): LeaderElectionConfig | undefined {
  if (o.enabled === false) return undefined;
  // The Lease lives beside the replicas: RBAC grants Leases in their own namespace only.
  const namespace =
    o.namespace ??
    (process.env['POD_NAMESPACE'] || (existsSync(SA_NAMESPACE_FILE) ? readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() : '') || 'default');
  const leaseName = o.leaseName ?? 'envoy-sds-issuance';
  const identity = o.identity ?? undefined;
  const leaseDurationMs = o.leaseDuration !== undefined ? parseGoDuration(o.leaseDuration)! : 15_000;
  if (leaseDurationMs < 1000 || leaseDurationMs % 1000 !== 0)
    throw new ConfigError(`${at}.leaseDuration`, 'must be whole seconds, at least 1s (the Lease records seconds)');
  const renewDeadlineMs = o.renewDeadline !== undefined ? parseGoDuration(o.renewDeadline)! : Math.floor((leaseDurationMs * 2) / 3);
  if (renewDeadlineMs >= leaseDurationMs)
    throw new ConfigError(`${at}.renewDeadline`, 'must be shorter than leaseDuration (the leader steps down before others may take over)');
  return { namespace, leaseName, leaseDurationMs, renewDeadlineMs, ...(identity ? { identity } : {}) };
}

function parseSettings(section: IssuanceSection, at: string): IssuanceSettings {
  const settings: IssuanceSettings = { ...DEFAULT_SETTINGS, acme: { ...DEFAULT_SETTINGS.acme }, caRotation: { ...DEFAULT_CA_ROTATION } };
  const ms = (d: string | undefined, dflt: number): number => (d === undefined ? dflt : parseGoDuration(d)!);
  if (section.backoff) {
    settings.backoffInitialMs = ms(section.backoff.initial, settings.backoffInitialMs);
    settings.backoffMaxMs = ms(section.backoff.max, settings.backoffMaxMs);
    if (settings.backoffMaxMs < settings.backoffInitialMs)
      throw new ConfigError(`${at}.backoff.max`, 'must not be shorter than backoff.initial');
  }
  if (section.renewalJitter !== undefined) settings.renewalJitter = section.renewalJitter;
  settings.maxConcurrentIssuances = section.maxConcurrentIssuances ?? settings.maxConcurrentIssuances;
  if (section.acme) {
    settings.acme.pollIntervalMs = ms(section.acme.pollInterval, settings.acme.pollIntervalMs);
    settings.acme.maxPollIntervalMs = ms(section.acme.maxPollInterval, settings.acme.maxPollIntervalMs);
    settings.acme.timeoutMs = ms(section.acme.timeout, settings.acme.timeoutMs);
  }
  const r = section.caRotation;
  if (r) {
    const c = settings.caRotation;
    c.ackTimeoutMs = ms(r.ackTimeout, c.ackTimeoutMs);
    c.reissueWindowMs = ms(r.reissueWindow, c.reissueWindowMs);
    c.checkIntervalMs = ms(r.checkInterval, c.checkIntervalMs);
    c.resumeGraceMs = ms(r.resumeGrace, c.resumeGraceMs);
    c.onCAKeyRotation = r.onCAKeyRotation ?? c.onCAKeyRotation;
  }
  return settings;
}
