// An Issuer or ClusterIssuer object to an IssuerResource. Supported: selfSigned, ca and
// acme (http01 served by our HTTP port, dns01 through RFC 2136). Other cert-manager
// issuer types and DNS providers are refused by name, so a user sees at once what is
// missing rather than a certificate that never becomes ready.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { certificatesFromPem, isPkiError } from '../pki/index.js';
import { arr, known, obj, oneOf, optBool, optObj, optStr, str, strList, type Doc } from './fields.js';
import { dnsLabelName } from './parse-certificate.js';
import type { AcmeIssuerSpec, AcmeSolver, IssuerKind, IssuerResource, IssuerRestrictions, IssuerSpec, Rfc2136Solver, SecretKeySelector, SolverSelector } from './resources.js';

const ISSUER_TYPES = ['selfSigned', 'ca', 'acme'];
const UNSUPPORTED_TYPES = ['vault', 'venafi'];
const DNS01_PROVIDERS = ['acmeDNS', 'akamai', 'azureDNS', 'cloudDNS', 'cloudflare', 'digitalocean', 'route53', 'webhook'];

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

export function parseIssuer(kind: IssuerKind, name: string, namespace: string | undefined, specRaw: unknown, at: string, ctx: IssuerParseContext): IssuerResource {
  const p = `${at}.spec`;
  const s = obj(specRaw, p);
  for (const t of UNSUPPORTED_TYPES) if (s[t] !== undefined) throw new ConfigError(`${p}.${t}`, `the ${t} issuer is not supported by envoy-sds (supported: selfSigned, ca, acme)`);
  known(s, p, [...ISSUER_TYPES, ...(kind === 'ClusterIssuer' ? ['restrictions'] : [])]);
  const types = ISSUER_TYPES.filter((t) => s[t] !== undefined);
  if (types.length !== 1) throw new ConfigError(p, `set exactly one of ${ISSUER_TYPES.join(', ')}`);
  let spec: IssuerSpec;
  if (s['selfSigned'] !== undefined) {
    // crlDistributionPoints: accepted and ignored (no CRLs are published here).
    known(optObj(s['selfSigned'], `${p}.selfSigned`) ?? {}, `${p}.selfSigned`, [], ['crlDistributionPoints']);
    spec = { type: 'selfSigned' };
  } else if (s['ca'] !== undefined) {
    const ca = obj(s['ca'], `${p}.ca`);
    known(ca, `${p}.ca`, ['secretName', 'serveCAPrivateKey'], ['crlDistributionPoints', 'ocspServers', 'issuingCertificateURLs']);
    spec = {
      type: 'ca',
      secretName: dnsLabelName(ca['secretName'], `${p}.ca.secretName`),
      serveCAPrivateKey: optBool(ca['serveCAPrivateKey'], `${p}.ca.serveCAPrivateKey`) ?? false,
    };
  } else {
    spec = { type: 'acme', acme: parseAcme(obj(s['acme'], `${p}.acme`), `${p}.acme`, ctx) };
  }
  let restrictions: IssuerRestrictions | undefined;
  if (s['restrictions'] !== undefined) {
    const r = obj(s['restrictions'], `${p}.restrictions`);
    known(r, `${p}.restrictions`, ['namespaces', 'dnsNames']);
    restrictions = { namespaces: strList(r['namespaces'], `${p}.restrictions.namespaces`), dnsNames: strList(r['dnsNames'], `${p}.restrictions.dnsNames`) };
    restrictions.dnsNames.forEach((d, i) => {
      if (!/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(d)) throw new ConfigError(`${p}.restrictions.dnsNames[${i}]`, `"${d}" must be a DNS name or "*.suffix"`);
    });
  }
  return { kind, name, namespace, secretNamespace: namespace ?? ctx.clusterResourceNamespace, spec, restrictions };
}

function parseAcme(a: Doc, p: string, ctx: IssuerParseContext): AcmeIssuerSpec {
  // enableDurationFeature, profile: accepted and ignored; the CA's default lifetime applies.
  known(
    a,
    p,
    ['server', 'email', 'privateKeySecretRef', 'externalAccountBinding', 'caBundle', 'caBundleFile', 'skipTLSVerify', 'preferredChain', 'disableAccountKeyGeneration', 'solvers'],
    ['enableDurationFeature', 'profile'],
  );
  const server = str(a['server'], `${p}.server`);
  if (!/^https?:\/\//.test(server) || !URL.canParse(server)) throw new ConfigError(`${p}.server`, `"${server}" is not an http(s) URL`);
  const ref = obj(a['privateKeySecretRef'], `${p}.privateKeySecretRef`);
  known(ref, `${p}.privateKeySecretRef`, ['name', 'key']);
  let eab: AcmeIssuerSpec['externalAccountBinding'];
  if (a['externalAccountBinding'] !== undefined) {
    const e = obj(a['externalAccountBinding'], `${p}.externalAccountBinding`);
    // keyAlgorithm: deprecated in cert-manager (always HS256); accepted and ignored.
    known(e, `${p}.externalAccountBinding`, ['keyID', 'keySecretRef'], ['keyAlgorithm']);
    eab = { keyID: str(e['keyID'], `${p}.externalAccountBinding.keyID`), keySecretRef: secretKeySelector(e['keySecretRef'], `${p}.externalAccountBinding.keySecretRef`) };
  }
  if (a['caBundle'] !== undefined && a['caBundleFile'] !== undefined) throw new ConfigError(p, 'set at most one of caBundle and caBundleFile');
  let caBundlePem: string | undefined;
  if (a['caBundle'] !== undefined) {
    caBundlePem = Buffer.from(str(a['caBundle'], `${p}.caBundle`), 'base64').toString('utf8');
    checkBundle(caBundlePem, `${p}.caBundle`);
  } else if (a['caBundleFile'] !== undefined) {
    const file = absolute(str(a['caBundleFile'], `${p}.caBundleFile`), ctx.baseDir);
    try {
      caBundlePem = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${p}.caBundleFile`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    checkBundle(caBundlePem, `${p}.caBundleFile`);
  }
  const solvers = a['solvers'] === undefined || a['solvers'] === null ? [] : arr(a['solvers'], `${p}.solvers`).map((raw, i) => parseSolver(raw, `${p}.solvers[${i}]`, ctx));
  return {
    server,
    email: optStr(a['email'], `${p}.email`),
    privateKeySecretRef: { name: dnsLabelName(ref['name'], `${p}.privateKeySecretRef.name`), key: ref['key'] === undefined ? 'tls.key' : dataKey(ref['key'], `${p}.privateKeySecretRef.key`) },
    externalAccountBinding: eab,
    caBundlePem,
    skipTLSVerify: optBool(a['skipTLSVerify'], `${p}.skipTLSVerify`) ?? false,
    preferredChain: optStr(a['preferredChain'], `${p}.preferredChain`),
    disableAccountKeyGeneration: optBool(a['disableAccountKeyGeneration'], `${p}.disableAccountKeyGeneration`) ?? false,
    solvers,
  };
}

function parseSolver(raw: unknown, p: string, ctx: IssuerParseContext): AcmeSolver {
  const s = obj(raw, p);
  known(s, p, ['selector', 'http01', 'dns01']);
  if ((s['http01'] === undefined) === (s['dns01'] === undefined)) throw new ConfigError(p, 'set exactly one of http01 or dns01');
  const selector = s['selector'] === undefined ? undefined : parseSelector(obj(s['selector'], `${p}.selector`), `${p}.selector`);
  if (s['http01'] !== undefined) {
    // ingress and gatewayHTTPRoute tell cert-manager how to route to its solver pod; here
    // the server's own HTTP port answers /.well-known/acme-challenge/, so they are ignored.
    known(optObj(s['http01'], `${p}.http01`) ?? {}, `${p}.http01`, [], ['ingress', 'gatewayHTTPRoute']);
    return { type: 'http01', selector };
  }
  const d = obj(s['dns01'], `${p}.dns01`);
  for (const provider of DNS01_PROVIDERS) {
    if (d[provider] !== undefined) throw new ConfigError(`${p}.dns01.${provider}`, 'this DNS provider is not supported by envoy-sds yet (supported: rfc2136)');
  }
  known(d, `${p}.dns01`, ['rfc2136', 'cnameStrategy']);
  const cnameStrategy = d['cnameStrategy'] === undefined || d['cnameStrategy'] === null ? 'None' : oneOf(d['cnameStrategy'], `${p}.dns01.cnameStrategy`, ['None', 'Follow'] as const);
  return { type: 'dns01', selector, rfc2136: parseRfc2136(obj(d['rfc2136'], `${p}.dns01.rfc2136`), `${p}.dns01.rfc2136`, ctx), cnameStrategy };
}

function parseSelector(s: Doc, p: string): SolverSelector {
  known(s, p, ['dnsNames', 'dnsZones', 'matchLabels']);
  const labels: Record<string, string> = {};
  const ml = optObj(s['matchLabels'], `${p}.matchLabels`) ?? {};
  for (const [k, v] of Object.entries(ml)) labels[k] = str(v, `${p}.matchLabels.${k}`);
  return {
    dnsNames: strList(s['dnsNames'], `${p}.dnsNames`).map((n) => n.toLowerCase()),
    dnsZones: strList(s['dnsZones'], `${p}.dnsZones`).map((z) => z.toLowerCase().replace(/\.$/, '')),
    matchLabels: labels,
  };
}

function parseRfc2136(r: Doc, p: string, ctx: IssuerParseContext): Rfc2136Solver {
  known(r, p, ['nameserver', 'tsigKeyName', 'tsigAlgorithm', 'tsigSecretSecretRef', 'tsigSecretFile']);
  const ns = str(r['nameserver'], `${p}.nameserver`);
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(ns) ?? /^([^:\s]+)(?::(\d+))?$/.exec(ns);
  if (!m) throw new ConfigError(`${p}.nameserver`, `"${ns}" must be host or host:port ([v6]:port for IPv6)`);
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new ConfigError(`${p}.nameserver`, `port ${port} is out of range`);
  const algoName = optStr(r['tsigAlgorithm'], `${p}.tsigAlgorithm`) ?? 'HMACSHA256';
  const tsigAlgorithm = TSIG_ALGORITHMS[algoName.toUpperCase().replace(/-/g, '')];
  if (tsigAlgorithm === undefined) {
    throw new ConfigError(`${p}.tsigAlgorithm`, `"${algoName}" is not supported (use one of ${Object.keys(TSIG_ALGORITHMS).join(', ')}; HMACMD5 is deprecated)`);
  }
  const tsigKeyName = str(r['tsigKeyName'], `${p}.tsigKeyName`);
  if ((r['tsigSecretSecretRef'] === undefined) === (r['tsigSecretFile'] === undefined)) {
    throw new ConfigError(p, 'set exactly one of tsigSecretSecretRef or tsigSecretFile (the TSIG secret is never written inline)');
  }
  const tsigSecret =
    r['tsigSecretSecretRef'] !== undefined
      ? { secretRef: secretKeySelector(r['tsigSecretSecretRef'], `${p}.tsigSecretSecretRef`) }
      : { file: absolute(str(r['tsigSecretFile'], `${p}.tsigSecretFile`), ctx.baseDir) };
  return { nameserver: { host: m[1]!, port }, tsigKeyName, tsigAlgorithm, tsigSecret };
}

function secretKeySelector(raw: unknown, p: string): SecretKeySelector {
  const o = obj(raw, p);
  known(o, p, ['name', 'key']);
  return { name: dnsLabelName(o['name'], `${p}.name`), key: dataKey(o['key'], `${p}.key`) };
}

/** A Secret data key, as Kubernetes allows them (and safe as a file name). */
function dataKey(v: unknown, at: string): string {
  const key = str(v, at);
  if (!/^[-._a-zA-Z0-9]+$/.test(key) || key.startsWith('.')) throw new ConfigError(at, `"${key}" is not a valid Secret data key`);
  return key;
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
