// DNS-01 through RFC 2136: the TXT record `_acme-challenge.<name>` carrying the digest of
// the key authorization is added with a TSIG-signed DNS UPDATE, checked on the same
// nameserver, and deleted (that value only) once the authorization is done. The TSIG
// secret is read when needed and never logged or put in a message. With cnameStrategy
// Follow, a CNAME at `_acme-challenge.<name>` is followed first and the record is
// written at its target, in whatever zone holds it (cert-manager's behaviour).

import { readFile } from 'node:fs/promises';
import type { CertificatePersister } from '../persisters/persister.js';
import type { IssuerResource, Rfc2136Solver } from '../resources.js';
import { updateTxt, type TsigKey } from '../solvers/rfc2136.js';
import { findZone, followCnames, queryTxt } from './find-zone.js';
import { IssuerNotReadyError } from '../issuers/issuer.js';

export interface Dns01Record {
  name: string;
  value: string;
}

export class Rfc2136Presenter {
  private readonly zones = new Map<string, string>();

  constructor(
    private readonly solver: Rfc2136Solver,
    private readonly issuer: IssuerResource,
    private readonly persister: CertificatePersister,
    private readonly cnameStrategy: 'None' | 'Follow' = 'None',
  ) {}

  /** `identifier` is the authorization's name (without a wildcard label); the record's name follows CNAMEs when asked to. */
  async recordFor(identifier: string, digest: string): Promise<Dns01Record> {
    const name = `_acme-challenge.${identifier.toLowerCase().replace(/\.$/, '')}`;
    return { name: this.cnameStrategy === 'Follow' ? await followCnames(this.solver.nameserver, name) : name, value: digest };
  }

  async present(record: Dns01Record): Promise<void> {
    const zone = await this.zoneOf(record.name);
    await updateTxt(this.solver.nameserver, await this.tsigKey(), zone, { action: 'add', name: record.name, value: record.value });
    // The update was answered by the primary itself, so the record is there unless a
    // second server answers the queries; one look confirms it before the CA is asked.
    const seen = await queryTxt(this.solver.nameserver, record.name);
    if (!seen.includes(record.value))
      throw new Error(
        `DNS-01: ${record.name} TXT not visible on ${this.solver.nameserver.host}:${this.solver.nameserver.port} after the update`,
      );
  }

  async cleanup(record: Dns01Record): Promise<void> {
    const zone = await this.zoneOf(record.name);
    await updateTxt(this.solver.nameserver, await this.tsigKey(), zone, { action: 'delete', name: record.name, value: record.value });
  }

  private async zoneOf(name: string): Promise<string> {
    let zone = this.zones.get(name);
    if (zone === undefined) {
      zone = await findZone(this.solver.nameserver, name);
      this.zones.set(name, zone);
    }
    return zone;
  }

  private async tsigKey(): Promise<TsigKey> {
    const s = this.solver;
    let secret: string | undefined;
    if ('file' in s.tsigSecret) {
      try {
        secret = await readFile(s.tsigSecret.file, 'utf8');
      } catch (err) {
        throw new IssuerNotReadyError(
          `TSIG secret file ${s.tsigSecret.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
    } else {
      const ref = s.tsigSecret.secretRef;
      const stored = await this.persister.readSecret(this.issuer.secretNamespace, ref.name);
      secret = stored?.data[ref.key];
      if (secret === undefined)
        throw new IssuerNotReadyError(`TSIG secret ${this.issuer.secretNamespace}/${ref.name} (key "${ref.key}") does not exist`);
    }
    return { name: s.tsigKeyName, algorithm: s.tsigAlgorithm, secret: secret.trim() };
  }
}
