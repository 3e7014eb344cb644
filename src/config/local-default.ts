import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fs/atomic-write.js';
import type { Logger } from '../observability/logger.js';
import { certificateFromPem, createCertificate, encodePrivateKeyPem, generatePrivateKey, issuerFromPem } from '../pki/index.js';
import { DEFAULT_GRPC_ADDRESS, DEFAULT_HTTP_ADDRESS, parseConfig, type ServerConfig } from './server-config.js';

export const LOCAL_CERT_NAME = 'localhost';
export const LOCAL_CA_NAME = 'localhost-cacert';

const DAY = 86_400_000;
const CA_LIFETIME = 3650 * DAY;
const LEAF_LIFETIME = 90 * DAY;

export interface LocalDefaultPaths {
  caCert: string;
  caKey: string;
  leafCert: string;
  leafKey: string;
}

export function localDefaultPaths(dataDir: string): LocalDefaultPaths {
  return {
    caCert: join(dataDir, 'ca', 'ca.crt'),
    caKey: join(dataDir, 'ca', 'ca.key'),
    leafCert: join(dataDir, 'certs', LOCAL_CERT_NAME, 'tls.crt'),
    leafKey: join(dataDir, 'certs', LOCAL_CERT_NAME, 'tls.key'),
  };
}

/**
 * The local default: a data directory with a self-signed root CA and a CA-signed
 * certificate for `localhost` (ECDSA P-256), served as `localhost` and
 * `localhost-cacert` on loopback, readable by loopback and Unix-socket callers only.
 * A restart reuses the data; a leaf in the last third of its life is re-issued.
 */
export async function prepareLocalDefault(
  dataDir: string,
  logger: Logger,
  addresses: { grpc?: string; http?: string } = {},
  now = new Date(),
): Promise<ServerConfig> {
  const paths = localDefaultPaths(dataDir);
  let caPem = await readOptional(paths.caCert);
  let caKeyPem = await readOptional(paths.caKey);
  if (!caPem || !caKeyPem) {
    const key = await generatePrivateKey({ algorithm: 'ECDSA', size: 256 });
    const ca = await createCertificate({
      issuer: 'self',
      privateKey: key,
      subject: { commonName: 'envoy-sds local root CA', organizations: ['envoy-sds-server'] },
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + CA_LIFETIME),
      isCA: true,
    });
    caKeyPem = encodePrivateKeyPem(key, 'PKCS8');
    caPem = ca.pem;
    // Key first: a crash between the two writes leaves a key without a certificate,
    // which the next start simply replaces.
    await writeFileAtomic(paths.caKey, caKeyPem, 0o600);
    await writeFileAtomic(paths.caCert, caPem);
    logger.info({ path: paths.caCert }, 'created local root CA');
  }

  const leafPem = await readOptional(paths.leafCert);
  if (!leafPem || !(await readOptional(paths.leafKey)) || leafNeedsRenewal(leafPem, now)) {
    const issuer = issuerFromPem(caPem, caKeyPem);
    const key = await generatePrivateKey({ algorithm: 'ECDSA', size: 256 });
    const leaf = await createCertificate({
      issuer,
      publicKey: key,
      subject: { commonName: 'localhost' },
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + LEAF_LIFETIME),
      keyUsages: ['digital signature'],
      extKeyUsages: ['server auth', 'client auth'],
    });
    await writeFileAtomic(paths.leafKey, encodePrivateKeyPem(key, 'PKCS8'), 0o600);
    await writeFileAtomic(paths.leafCert, leaf.pem);
    logger.info({ path: paths.leafCert }, 'issued local certificate for localhost');
  }

  return parseConfig(
    {
      dataDir,
      grpc: { tcp: { address: addresses.grpc ?? DEFAULT_GRPC_ADDRESS } },
      http: { address: addresses.http ?? DEFAULT_HTTP_ADDRESS },
      secrets: [
        { name: LOCAL_CERT_NAME, tlsCertificate: { certificateChainFile: paths.leafCert, privateKeyFile: paths.leafKey } },
        { name: LOCAL_CA_NAME, validationContext: { trustedCaFile: paths.caCert } },
      ],
      authorization: { rules: [{ identities: ['loopback', 'unix'], names: [LOCAL_CERT_NAME, LOCAL_CA_NAME] }] },
    },
    dataDir,
  );
}

function leafNeedsRenewal(pem: string, now: Date): boolean {
  try {
    const cert = certificateFromPem(pem);
    const life = cert.notAfter.getTime() - cert.notBefore.getTime();
    return cert.notAfter.getTime() - now.getTime() < life / 3;
  } catch {
    return true;
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
