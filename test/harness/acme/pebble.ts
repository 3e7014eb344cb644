// Pebble, Let's Encrypt's ACME test server, on 127.0.0.1 for tests. It serves its
// directory over HTTPS with a certificate made here (trust `caPem`), resolves challenge
// names through `dnsServer` (our BIND), and validates HTTP-01 on `httpPort`.
// PEBBLE_VA_NOSLEEP=1 removes the random validation delay; nonce rejection stays at its
// default (about 5%), so the client's badNonce retry is exercised.

import { randomBytes, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { x509 } from '../../../src/pki/index.js';
import { freePort, PEBBLE, requireTool, startProcess, waitUntil, type ServerProcess } from './tools.js';

export interface PebbleOptions {
  /** host:port of the DNS server Pebble resolves challenge names with. */
  dnsServer: string;
  /** Port Pebble connects to for HTTP-01 validation. */
  httpPort: number;
  /** Port for TLS-ALPN-01 validation; a free one when omitted. */
  tlsPort?: number;
  /** Require external account binding; the key is in `eab`. */
  eab?: boolean;
}

export interface PebbleServer {
  directoryUrl: string;
  /** The CA that signed Pebble's HTTPS certificate: trust it for the directory. */
  caPem: string;
  /** An https.Agent that trusts `caPem`. */
  httpsAgent: Agent;
  managementUrl: string;
  /** For acme-client's `externalAccountBinding` when started with `eab: true`. */
  eab: { kid: string; hmacKey: string } | undefined;
  /** The root that issues certificates (changes on every start). */
  rootPem(): Promise<string>;
  /** The intermediate that signs leaf certificates. */
  intermediatePem(): Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A throwaway CA and a `localhost` / 127.0.0.1 server certificate signed by it. */
async function servingCertificate(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 7 * 24 * 3600_000);
  const caKeys = await webcrypto.subtle.generateKey(ECDSA, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Pebble test harness serving CA',
    keys: caKeys,
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const keys = await webcrypto.subtle.generateKey(ECDSA, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    subject: 'CN=localhost',
    issuer: ca.subject,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  return {
    caPem: ca.toString('pem') + '\n',
    certPem: cert.toString('pem') + '\n',
    keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

function get(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function getPem(url: string, agent: Agent): Promise<string> {
  const res = await get(url, agent);
  if (res.status !== 200 || !res.body.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error(`GET ${url}: HTTP ${res.status}: ${res.body.slice(0, 200)}`);
  }
  return res.body;
}

/** Starts Pebble; retries on other ports when one picked was taken meanwhile. */
export async function startPebble(opts: PebbleOptions): Promise<PebbleServer> {
  const pebble = requireTool(PEBBLE);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(pebble, opts);
    } catch (err) {
      lastError = err;
      if (!/address already in use/i.test((err as Error).message)) break;
    }
  }
  throw lastError;
}

async function startOnce(pebble: string, opts: PebbleOptions): Promise<PebbleServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pebble-'));
  const { caPem, certPem, keyPem } = await servingCertificate();
  writeFileSync(join(dir, 'cert.pem'), certPem);
  writeFileSync(join(dir, 'key.pem'), keyPem, { mode: 0o600 });
  const listenPort = await freePort();
  const managementPort = await freePort();
  const eab = opts.eab ? { kid: 'kid-1', hmacKey: randomBytes(32).toString('base64url') } : undefined;
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${listenPort}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: join(dir, 'cert.pem'),
      privateKey: join(dir, 'key.pem'),
      httpPort: opts.httpPort,
      tlsPort: opts.tlsPort ?? (await freePort()),
      ocspResponderURL: '',
      externalAccountBindingRequired: eab !== undefined,
      ...(eab ? { externalAccountMACKeys: { [eab.kid]: eab.hmacKey } } : {}),
    },
  };
  writeFileSync(join(dir, 'pebble-config.json'), JSON.stringify(config, null, 2));

  const proc: ServerProcess = startProcess(pebble, ['-config', join(dir, 'pebble-config.json'), '-strict', '-dnsserver', opts.dnsServer], {
    cwd: dir,
    env: { PEBBLE_VA_NOSLEEP: '1' },
  });
  const httpsAgent = new Agent({ ca: caPem, keepAlive: false });
  const directoryUrl = `https://127.0.0.1:${listenPort}/dir`;
  const managementUrl = `https://127.0.0.1:${managementPort}`;
  const stop = async () => {
    httpsAgent.destroy();
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(`pebble on 127.0.0.1:${listenPort}`, proc, async () => (await get(directoryUrl, httpsAgent)).status === 200, 30_000);
    await waitUntil(
      `pebble management on 127.0.0.1:${managementPort}`,
      proc,
      async () => (await get(`${managementUrl}/roots/0`, httpsAgent)).status === 200,
      10_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    directoryUrl,
    caPem,
    httpsAgent,
    managementUrl,
    eab,
    rootPem: () => getPem(`${managementUrl}/roots/0`, httpsAgent),
    intermediatePem: () => getPem(`${managementUrl}/intermediates/0`, httpsAgent),
    output: () => proc.output(),
    stop,
  };
}
