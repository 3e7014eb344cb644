import { certificatesFromPem, summarizeCertificate } from '../pki/index.js';
import type { ReceivedSecret } from './sds-client.js';

/** What people want to see of a secret Envoy would receive: never the key unless asked. */
export function describeSecret(secret: ReceivedSecret, version: string, showKey: boolean): string {
  const lines: string[] = [`secret: ${secret.name}`, `version: ${version}`];
  const text = (ds?: { inline_bytes?: Buffer; inline_string?: string }) =>
    ds?.inline_bytes ? Buffer.from(ds.inline_bytes).toString('utf8') : (ds?.inline_string ?? '');
  if (secret.tls_certificate) {
    lines.push('type: tls_certificate');
    lines.push(...describeCerts(text(secret.tls_certificate.certificate_chain), 'certificate'));
    const key = text(secret.tls_certificate.private_key);
    lines.push(showKey ? `private key:\n${key.trimEnd()}` : `private key: present (${key.length} bytes; --show-key to print)`);
  } else if (secret.validation_context) {
    lines.push('type: validation_context');
    lines.push(...describeCerts(text(secret.validation_context.trusted_ca), 'CA'));
  } else {
    lines.push(`type: ${secret.type ?? 'unknown'}`);
  }
  return lines.join('\n');
}

function describeCerts(pem: string, label: string): string[] {
  const out: string[] = [];
  let certs;
  try {
    certs = certificatesFromPem(pem);
  } catch (err) {
    return [`  (cannot parse ${label} PEM: ${(err as Error).message})`];
  }
  certs.forEach((c, i) => {
    const s = summarizeCertificate(c);
    out.push(`${label} [${i}]:`);
    out.push(`  subject:     ${s.subject}`);
    out.push(`  issuer:      ${s.issuer}`);
    const sans = [
      ...s.dnsNames.map((d) => `DNS:${d}`),
      ...s.ipAddresses.map((d) => `IP:${d}`),
      ...s.uris.map((d) => `URI:${d}`),
      ...s.emailAddresses.map((d) => `email:${d}`),
    ];
    if (sans.length) out.push(`  SANs:        ${sans.join(', ')}`);
    out.push(`  not before:  ${s.notBefore.toISOString()}`);
    out.push(`  not after:   ${s.notAfter.toISOString()}`);
    out.push(`  serial:      ${s.serialNumber}`);
    out.push(`  key:         ${s.keyAlgorithm}`);
    out.push(`  is CA:       ${s.isCA}`);
    out.push(`  SHA-256:     ${s.sha256Fingerprint}`);
  });
  return out;
}
