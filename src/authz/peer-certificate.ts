import { EXTENSION, nameToString, readCertificateFields } from '../pki/certificate-fields.js';
import { decodeSubjectAltNames } from '../pki/extensions.js';
import type { PeerInfo } from './authorizer.js';

export type ClientCertificate = NonNullable<PeerInfo['clientCertificate']>;

/**
 * The names of a verified client certificate, read from its DER rather than from the
 * `subjectaltname` text that TLS libraries print: that text is comma-joined, so a URI SAN
 * `dns:edge.example.org` (or one holding ", DNS:x") could pass for a DNS name. URI and DNS
 * SANs come out in separate lists and never meet. A certificate that does not parse
 * yields no names (the caller is then anonymous, never someone else).
 */
export function clientCertificateFromDer(der: Uint8Array): ClientCertificate {
  try {
    const fields = readCertificateFields(der);
    const san = fields.extensions.get(EXTENSION.subjectAltName);
    const names = san ? decodeSubjectAltNames(san.value) : { uris: [], dnsNames: [] };
    return { uris: names.uris, dnsNames: names.dnsNames, subject: nameToString(fields.subject) };
  } catch {
    return { uris: [], dnsNames: [], subject: '' };
  }
}
