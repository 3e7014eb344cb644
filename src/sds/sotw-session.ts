import { createHash } from 'node:crypto';
import type { StoredSecret } from '../store/secret-material.js';
import { boundedCopy } from './bounded-text.js';
import type { DiscoveryRequest } from './messages.js';
import { checkNames, nackMessage, tooManyNamesForIdentity, type Rejection } from './request-checks.js';
import { encodeSecret, TYPE_URL_FIELD } from './secret-encoding.js';
import type { NackRecord } from './stream-status.js';
import { SubscriptionState } from './subscription-state.js';
import { stringField } from './wire.js';

/** Our versions are short hashes; a longer one from a client is cut before it is kept. */
const MAX_VERSION_LENGTH = 128;

export type SotwVerdict =
  Rejection | { type: 'stale' } | { type: 'accept'; ack: boolean; nack: NackRecord | undefined; added: string[]; removed: string[] };

/**
 * Protocol state of one state-of-the-world stream (StreamSecrets, or ADS for the Secret
 * type). No I/O: the gRPC handler feeds it requests and store changes and writes what
 * it builds. The delivery status it keeps is the stream's StreamStatus.
 */
export class SotwSession extends SubscriptionState {
  private lastNonce = '';
  private nonceSeq = 0;
  private lastResponse = new Map<string, string>();

  onRequest(req: DiscoveryRequest): SotwVerdict {
    const admitted = this.admit(req.type_url, req.node);
    if ('type' in admitted) return admitted;
    const { first } = admitted;

    const nonce = req.response_nonce ?? '';
    // Stale nonce: the client has not seen our latest response yet; it will send a
    // newer request, so this one is ignored whole. A nonce on a stream that has had no
    // response yet comes from an earlier stream: treat it as none.
    if (nonce !== '' && this.nonceSeq > 0 && nonce !== this.lastNonce) return { type: 'stale' };

    const names = req.resource_names ?? [];
    const wanted = new Set(names);
    const bad = checkNames(wanted, wanted.size, this.limits);
    if (bad) return bad;

    const added: string[] = [];
    const removed: string[] = [];
    for (const name of wanted) {
      if (!this.subscribed.has(name)) added.push(name);
    }
    // SDS is not a wildcard type: an empty list means "unsubscribed from everything".
    for (const name of this.subscribed) {
      if (!wanted.has(name)) removed.push(name);
    }
    if (!this.budget.fits(added, removed)) return tooManyNamesForIdentity(this.budget.limit);
    // Stored as the identity's copy of each name (one string however many streams ask).
    for (let i = 0; i < added.length; i++) {
      added[i] = this.hold(added[i]!);
      this.status.entry(added[i]!); // shown in delivery status (NOT_SENT) until something is sent
    }

    let ack = false;
    let nack: NackRecord | undefined;
    if (nonce !== '' && this.nonceSeq > 0) {
      if (req.error_detail) {
        // NACK: the client keeps its previous version and waits for a new push. The
        // rejected payload is never re-sent: pushes happen only on a version change.
        // The message is bounded before it is kept: a client chooses its size.
        const message = nackMessage(req.error_detail.message, this.limits);
        const at = new Date();
        for (const [name, version] of this.lastResponse) {
          nack = { version, message, at };
          this.status.entry(name).lastNack = nack;
        }
      } else {
        // ACK: nothing to send back.
        ack = true;
        for (const [name, version] of this.lastResponse) this.status.entry(name).acked = version;
      }
    } else if (first && req.version_info) {
      // Reconnect: the client names the version it holds. Answered with the current
      // secret anyway (a new stream always gets one), but shown in status meanwhile.
      const held = boundedCopy(req.version_info, MAX_VERSION_LENGTH);
      for (const name of added) this.status.entry(name).acked = held;
    }

    for (const name of removed) this.drop(name);
    return { type: 'accept', ack, nack, added, removed };
  }

  /**
   * Builds the response carrying these secrets (distinct names) and records them as
   * sent. One secret (the usual SDS stream) reuses the bytes encoded for its version.
   */
  buildResponse(secrets: readonly StoredSecret[]): Buffer {
    const nonce = String(++this.nonceSeq);
    this.lastNonce = nonce;
    this.lastResponse = new Map(secrets.map((s) => [s.name, s.version]));
    for (const s of secrets) this.status.entry(s.name).sent = s.version;
    const nonceField = stringField(5, nonce);
    if (secrets.length === 1) return Buffer.concat([encodeSecret(secrets[0]!).sotwBody, nonceField]);
    const parts: Buffer[] = [stringField(1, combinedVersion(secrets))];
    for (const s of secrets) parts.push(encodeSecret(s).sotwResourceField);
    parts.push(TYPE_URL_FIELD, nonceField);
    return Buffer.concat(parts);
  }
}

/** version_info of a response with several secrets: a hash of their versions. */
function combinedVersion(secrets: readonly StoredSecret[]): string {
  const h = createHash('sha256');
  for (const s of [...secrets].sort((a, b) => (a.name < b.name ? -1 : 1))) h.update(`${s.name}\0${s.version}\0`);
  return h.digest('hex').slice(0, 16);
}
