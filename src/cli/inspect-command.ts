import { X509Certificate } from 'node:crypto';
import { DEFAULT_HTTP_ADDRESS } from '../config/server-config.js';
import type { DeliveryPage } from '../delivery/delivery-report.js';
import { certificatesFromPem, summarizeCertificate } from '../pki/index.js';
import { parseCommandArgs, UsageError } from './arguments.js';
import { parseServerAddress } from './server-address.js';

export const INSPECT_USAGE = `Usage: envoy-sds inspect NAME [--http ADDR] [--expiring-days N]

What the server serves as NAME, as cmctl inspect secret shows it: each certificate's
subject, SANs, key usages, extended key usages, validity and days left (EXPIRED and
expiring marked), whether the chain verifies against the served NAME-cacert bundle (or
its own root), the last rejected update with its code, and which gateways hold which
version. Never the private key.

Options:
  --http ADDR          the server's HTTP address (default ${DEFAULT_HTTP_ADDRESS})
  --expiring-days N    mark certificates with fewer days left (default 30)
  -h, --help           this help

Exit status: 0 fine, 1 a certificate is expired or the chain does not verify, 2 usage
error, 3 the server cannot be read or does not serve NAME.
`;

interface ServedSecret {
  name: string;
  kind: 'tls_certificate' | 'validation_context';
  version: string;
  origin: string;
  updatedAt: string;
  warnings: string[];
  certificates: string;
  lastRejection?: { code: string; message: string; at: string; origin: string };
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON shape it expects
async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as T };
}

/** Whether `chain` (leaf first) links and ends at one of `roots` or at a self-signed root of its own. */
export function verifyChain(chain: X509Certificate[], roots: X509Certificate[]): { ok: boolean; how: string } {
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
      return { ok: false, how: `certificate [${i}] is not signed by certificate [${i + 1}]` };
    }
  }
  const last = chain[chain.length - 1]!;
  for (const root of roots) {
    if (last.fingerprint256 === root.fingerprint256)
      return { ok: true, how: `ends at a trusted CA (${root.subject.replace(/\n/g, ', ')})` };
    if (last.checkIssued(root) && last.verify(root.publicKey)) return { ok: true, how: `signed by ${root.subject.replace(/\n/g, ', ')}` };
  }
  if (roots.length > 0) return { ok: false, how: 'not signed by any CA of the bundle' };
  if (last.checkIssued(last) && last.verify(last.publicKey))
    return { ok: true, how: 'ends at its own self-signed root (no -cacert bundle served)' };
  return { ok: false, how: 'no -cacert bundle is served, and the chain does not end at a self-signed root' };
}

export async function inspectCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const { values, positionals } = parseCommandArgs('inspect', args, {
    http: { type: 'string', default: DEFAULT_HTTP_ADDRESS },
    'expiring-days': { type: 'string', default: '30' },
  });
  if (values.help) {
    out.write(INSPECT_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('envoy-sds inspect: name one secret (see envoy-sds inspect --help)');
  const name = positionals[0]!;
  const expiringDays = Number(values['expiring-days']);
  if (!Number.isFinite(expiringDays) || expiringDays < 0)
    throw new UsageError(`envoy-sds inspect: --expiring-days ${values['expiring-days']}: expected a number of days`);
  const address = parseServerAddress(values.http, '--http');
  if (address.kind !== 'tcp') throw new UsageError('envoy-sds inspect: --http takes host:port');
  const base = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;

  let secret: { status: number; body: ServedSecret & { error?: string } };
  let bundle: { status: number; body: ServedSecret } | undefined;
  let holders: DeliveryPage | undefined;
  try {
    secret = await getJson(`${base}/secrets/${encodeURIComponent(name)}`);
    if (secret.status === 200 && secret.body.kind === 'tls_certificate') {
      const b = await getJson<ServedSecret>(`${base}/secrets/${encodeURIComponent(`${name}-cacert`)}`);
      if (b.status === 200) bundle = b;
    }
    const h = await getJson<DeliveryPage>(`${base}/delivery?secret=${encodeURIComponent(name)}&limit=5000`);
    if (h.status === 200) holders = h.body;
  } catch (e) {
    err.write(`envoy-sds inspect: cannot read ${base} (${(e as Error).message})\n`);
    return 3;
  }
  const rejection = secret.body.lastRejection;
  const rejectionLine = rejection
    ? `last rejected update: ${rejection.code} at ${rejection.at} from ${rejection.origin}: ${rejection.message}`
    : undefined;
  if (secret.status !== 200) {
    err.write(`envoy-sds inspect ${name}: ${secret.body.error ?? `HTTP ${secret.status}`}\n`);
    if (rejectionLine) err.write(`${rejectionLine}\n`);
    return 3;
  }

  const now = Date.now();
  const lines: string[] = [
    `secret:   ${secret.body.name}`,
    `type:     ${secret.body.kind}`,
    `version:  ${secret.body.version} (since ${secret.body.updatedAt})`,
    `origin:   ${secret.body.origin}`,
  ];
  if (secret.body.warnings.length) lines.push(`warnings: ${secret.body.warnings.join('; ')}`);
  let bad = false;
  const certs = certificatesFromPem(secret.body.certificates);
  certs.forEach((c, i) => {
    const s = summarizeCertificate(c);
    const daysLeft = Math.floor((s.notAfter.getTime() - now) / 86_400_000);
    const mark =
      s.notAfter.getTime() < now
        ? '  EXPIRED'
        : s.notBefore.getTime() > now
          ? '  NOT YET VALID'
          : daysLeft < expiringDays
            ? '  EXPIRING'
            : '';
    if (s.notAfter.getTime() < now) bad = true;
    const sans = [
      ...s.dnsNames.map((d) => `DNS:${d}`),
      ...s.ipAddresses.map((d) => `IP:${d}`),
      ...s.uris.map((d) => `URI:${d}`),
      ...s.emailAddresses.map((d) => `email:${d}`),
    ];
    lines.push(
      '',
      `${secret.body.kind === 'tls_certificate' ? 'certificate' : 'CA'} [${i}]:${mark}`,
      `  subject:       ${s.subject}`,
      `  issuer:        ${s.issuer}`,
      ...(sans.length ? [`  SANs:          ${sans.join(', ')}`] : []),
      `  key usages:    ${s.keyUsages.join(', ') || '-'}`,
      `  ext key usages: ${s.extKeyUsages.join(', ') || '-'}`,
      `  is CA:         ${s.isCA}`,
      `  not before:    ${s.notBefore.toISOString()}`,
      `  not after:     ${s.notAfter.toISOString()} (${daysLeft < 0 ? `expired ${-daysLeft} days ago` : `${daysLeft} days left`})`,
      `  key:           ${s.keyAlgorithm}`,
      `  serial:        ${s.serialNumber}`,
      `  SHA-256:       ${s.sha256Fingerprint}`,
    );
  });
  if (secret.body.kind === 'tls_certificate') {
    const chain = certs.map((c) => new X509Certificate(c.rawData ? Buffer.from(c.rawData) : Buffer.alloc(0)));
    const roots = bundle ? certificatesFromPem(bundle.body.certificates).map((c) => new X509Certificate(Buffer.from(c.rawData))) : [];
    const v = verifyChain(chain, roots);
    if (!v.ok) bad = true;
    lines.push('', `verifies: ${v.ok ? 'yes' : 'NO'}${bundle ? ` against ${name}-cacert (version ${bundle.body.version})` : ''}: ${v.how}`);
  }
  lines.push('', rejectionLine ?? 'last rejected update: none');
  lines.push('', 'held by:');
  const rows =
    holders?.nodes.flatMap((n) =>
      n.secrets.map(
        (s) =>
          `  ${n.node.id} (${n.node.cluster}) on ${n.replica}: ${s.state}${s.acked ? ` ${s.acked}` : ''}${s.nack ? ` (rejected ${s.nack.version}: ${s.nack.message})` : ''}`,
      ),
    ) ?? [];
  lines.push(...(rows.length ? rows : ['  no gateway is subscribed']));
  out.write(`${lines.join('\n')}\n`);
  return bad ? 1 : 0;
}
