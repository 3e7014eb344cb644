// The persister of local mode: everything under <dataDir>/issuance/.
//
//   secrets/<namespace>/<secret>/tls.crt, tls.key (0600), ca.crt, .annotations.json
//       issued Secrets (served by the file source), CA key pairs, ACME account keys,
//       TSIG secrets: one file per data key, as a Kubernetes Secret volume shows them
//   certificates/<namespace>/<certificate>/status.json, next.key (0600), order.json
//       the engine's own state per Certificate
//
// Each file is replaced atomically (writeFileAtomic). Directories are 0700: they hold
// private keys.

import { mkdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../fs/atomic-write.js';
import type { CertificateStatus } from '../certificate-status.js';
import type { CertificatePersister, OrderState, PersistedSecret, SecretFiles } from './persister.js';
import type { CertificateResource } from '../resources.js';
import { readPersisted } from '../../config/schema/read-json.js';
import { annotations, certificateStatus, orderState } from '../schema/status.js';

const ANNOTATIONS_FILE = '.annotations.json';
const PRIVATE_MODE = 0o600;

export class FilePersister implements CertificatePersister {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'issuance');
  }

  secretDir(namespace: string, name: string): string {
    return join(this.root, 'secrets', namespace, name);
  }

  certificateDir(cert: CertificateResource): string {
    return join(this.root, 'certificates', cert.namespace, cert.name);
  }

  secretFiles(namespace: string, name: string): SecretFiles {
    const dir = this.secretDir(namespace, name);
    // The file source watches this directory from its start, which comes before the
    // first issuance; a directory that does not exist yet could not be watched.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return { certificateChainFile: join(dir, 'tls.crt'), privateKeyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') };
  }

  async readSecret(namespace: string, name: string): Promise<PersistedSecret | undefined> {
    const dir = this.secretDir(namespace, name);
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const data: Record<string, string> = {};
    for (const entry of entries) {
      if (entry.startsWith('.')) continue; // annotations and writeFileAtomic's temp files
      const text = await readOptional(join(dir, entry));
      if (text !== undefined) data[entry] = text;
    }
    if (Object.keys(data).length === 0) return undefined;
    const annotationsText = await readOptional(join(dir, ANNOTATIONS_FILE));
    return { data, annotations: readPersisted(annotations, annotationsText) ?? {} };
  }

  async writeSecret(namespace: string, name: string, secret: PersistedSecret): Promise<void> {
    const dir = this.secretDir(namespace, name);
    await mkdirPrivate(dir);
    // The key first: a reader that sees a new certificate then also finds its key.
    const keys = Object.keys(secret.data).sort((a, b) => rank(a) - rank(b));
    for (const key of keys) {
      if (!/^[-._a-zA-Z0-9]+$/.test(key) || key.startsWith('.')) throw new Error(`invalid Secret data key "${key}"`);
      // Certificates are public; anything else (keys, TSIG or EAB secrets) is not.
      await writeFileAtomic(join(dir, key), secret.data[key]!, key.endsWith('.crt') ? 0o644 : PRIVATE_MODE);
    }
    for (const entry of await readdir(dir)) {
      if (!entry.startsWith('.') && !(entry in secret.data)) await rm(join(dir, entry), { force: true });
    }
    await writeFileAtomic(join(dir, ANNOTATIONS_FILE), `${JSON.stringify(secret.annotations, null, 2)}\n`);
  }

  readNextPrivateKey(cert: CertificateResource): Promise<string | undefined> {
    return readOptional(join(this.certificateDir(cert), 'next.key'));
  }

  async writeNextPrivateKey(cert: CertificateResource, pem: string): Promise<void> {
    await mkdirPrivate(this.certificateDir(cert));
    await writeFileAtomic(join(this.certificateDir(cert), 'next.key'), pem, PRIVATE_MODE);
  }

  async deleteNextPrivateKey(cert: CertificateResource): Promise<void> {
    await rm(join(this.certificateDir(cert), 'next.key'), { force: true });
  }

  async readOrder(cert: CertificateResource): Promise<OrderState | undefined> {
    const text = await readOptional(join(this.certificateDir(cert), 'order.json'));
    return readPersisted(orderState, text);
  }

  async writeOrder(cert: CertificateResource, order: OrderState): Promise<void> {
    await mkdirPrivate(this.certificateDir(cert));
    await writeFileAtomic(join(this.certificateDir(cert), 'order.json'), `${JSON.stringify(order, null, 2)}\n`);
  }

  async deleteOrder(cert: CertificateResource): Promise<void> {
    await rm(join(this.certificateDir(cert), 'order.json'), { force: true });
  }

  async readStatus(cert: CertificateResource): Promise<CertificateStatus | undefined> {
    const text = await readOptional(join(this.certificateDir(cert), 'status.json'));
    // A damaged status is rebuilt from the Secret.
    return readPersisted(certificateStatus, text);
  }

  async writeStatus(cert: CertificateResource, status: CertificateStatus): Promise<void> {
    await mkdirPrivate(this.certificateDir(cert));
    await writeFileAtomic(join(this.certificateDir(cert), 'status.json'), `${JSON.stringify(status, null, 2)}\n`);
  }
}

function rank(key: string): number {
  return key === 'tls.key' ? 0 : key === 'tls.crt' ? 1 : 2;
}

async function mkdirPrivate(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') return undefined;
    throw err;
  }
}
