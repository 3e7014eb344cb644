// An Issuer or ClusterIssuer object to an IssuerResource. The shape and the rules across
// fields are in schema/issuer-spec.ts; what needs more than the object (reading a CA
// bundle file, the TSIG algorithm table, the nameserver's port) is here.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { checkSchema } from '../config/schema/check.js';
import { certificatesFromPem, isPkiError } from '../pki/index.js';
import type { AcmeIssuerSpec, AcmeSolver, IssuerKind, IssuerResource, IssuerSpec, Rfc2136Solver, SolverSelector } from './resources.js';
import { clusterIssuerSpec, issuerSpec, type AcmeSpecInput, type IssuerSpecInput, type SolverInput } from './schema/issuer-spec.js';

// cert-manager's TSIG algorithm names to our client's. MD5 (cert-manager's default) is
// left out on purpose: RFC 8945 deprecates it.
const TSIG_ALGORITHMS: Record<string, string> = {
  HMACSHA1: 'hmac-sha1',
  HMACSHA224: 'hmac-sha224',
  HMACSHA256: 'hmac-sha256',
  HMACSHA384: 'hmac-sha384',
  HMACSHA512: 'hmac-sha512',
};

export interface IssuerParseContext {
  /** Namespace of a ClusterIssuer's Secrets. */
  clusterResourceNamespace: string;
  /** Relative `caBundleFile` / `tsigSecretFile` paths resolve against this. */
  baseDir: string;
}

export function parseIssuer(
  kind: IssuerKind,
  name: string,
  namespace: string | undefined,
  specRaw: unknown,
  at: string,
  ctx: IssuerParseContext,
): IssuerResource {
  const p = `${at}.spec`;
  const s: IssuerSpecInput = checkSchema(kind === 'ClusterIssuer' ? clusterIssuerSpec : issuerSpec, specRaw, p);
  let spec: IssuerSpec;
  if (s.ca) spec = { type: 'ca', secretName: s.ca.secretName, serveCAPrivateKey: s.ca.serveCAPrivateKey ?? false };
  else if (s.acme) spec = { type: 'acme', acme: acmeSpec(s.acme, `${p}.acme`, ctx) };
  else spec = { type: 'selfSigned' };
  const r = s.restrictions;
  const restrictions = r ? { namespaces: r.namespaces ?? [], dnsNames: r.dnsNames ?? [] } : undefined;
  return { kind, name, namespace, secretNamespace: namespace ?? ctx.clusterResourceNamespace, spec, restrictions };
}

function acmeSpec(a: AcmeSpecInput, p: string, ctx: IssuerParseContext): AcmeIssuerSpec {
  let caBundlePem: string | undefined;
  if (a.caBundle !== undefined) {
    caBundlePem = Buffer.from(a.caBundle, 'base64').toString('utf8');
    checkBundle(caBundlePem, `${p}.caBundle`);
  } else if (a.caBundleFile !== undefined) {
    const file = absolute(a.caBundleFile, ctx.baseDir);
    try {
      caBundlePem = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${p}.caBundleFile`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    checkBundle(caBundlePem, `${p}.caBundleFile`);
  }
  const eab = a.externalAccountBinding;
  return {
    server: a.server,
    email: a.email,
    privateKeySecretRef: a.privateKeySecretRef,
    externalAccountBinding: eab ? { keyID: eab.keyID, keySecretRef: eab.keySecretRef } : undefined,
    caBundlePem,
    skipTLSVerify: a.skipTLSVerify ?? false,
    preferredChain: a.preferredChain,
    disableAccountKeyGeneration: a.disableAccountKeyGeneration ?? false,
    solvers: (a.solvers ?? []).map((s, i) => solverSpec(s, `${p}.solvers[${i}]`, ctx)),
  };
}

function solverSpec(s: SolverInput, p: string, ctx: IssuerParseContext): AcmeSolver {
  const selector: SolverSelector | undefined = s.selector
    ? {
        dnsNames: (s.selector.dnsNames ?? []).map((n) => n.toLowerCase()),
        dnsZones: (s.selector.dnsZones ?? []).map((z) => z.toLowerCase().replace(/\.$/, '')),
        matchLabels: { ...s.selector.matchLabels },
      }
    : undefined;
  if (!s.dns01) return { type: 'http01', selector };
  return {
    type: 'dns01',
    selector,
    rfc2136: rfc2136Spec(s.dns01.rfc2136, `${p}.dns01.rfc2136`, ctx),
    cnameStrategy: s.dns01.cnameStrategy ?? 'None',
  };
}

function rfc2136Spec(r: NonNullable<SolverInput['dns01']>['rfc2136'], p: string, ctx: IssuerParseContext): Rfc2136Solver {
  const ns = r.nameserver;
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(ns) ?? /^([^:\s]+)(?::(\d+))?$/.exec(ns);
  if (!m) throw new ConfigError(`${p}.nameserver`, `"${ns}" must be host or host:port ([v6]:port for IPv6)`);
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new ConfigError(`${p}.nameserver`, `port ${port} is out of range`);
  const algoName = r.tsigAlgorithm ?? 'HMACSHA256';
  const tsigAlgorithm = TSIG_ALGORITHMS[algoName.toUpperCase().replace(/-/g, '')];
  if (tsigAlgorithm === undefined) {
    throw new ConfigError(
      `${p}.tsigAlgorithm`,
      `"${algoName}" is not supported (use one of ${Object.keys(TSIG_ALGORITHMS).join(', ')}; HMACMD5 is deprecated)`,
    );
  }
  const tsigSecret = r.tsigSecretSecretRef ? { secretRef: r.tsigSecretSecretRef } : { file: absolute(r.tsigSecretFile!, ctx.baseDir) };
  return { nameserver: { host: m[1]!, port }, tsigKeyName: r.tsigKeyName, tsigAlgorithm, tsigSecret };
}

function checkBundle(pem: string, at: string): void {
  try {
    if (certificatesFromPem(pem).length === 0) throw new ConfigError(at, 'holds no certificate');
  } catch (err) {
    if (isPkiError(err)) throw new ConfigError(at, `not a PEM certificate bundle: ${err.message}`);
    throw err;
  }
}

function absolute(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}
