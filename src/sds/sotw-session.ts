import type { StoredSecret } from '../store/secret-material.js';
import { boundedCopy } from './bounded-text.js';
import type { DiscoveryRequest } from './messages.js';
import { checkName, checkNames, nackMessage, tooManyNamesForIdentity, type Rejection } from './request-checks.js';
import { sotwResponse, type ResponseParts } from './responses.js';
import type { RequestOutcome, Session } from './session.js';
import type { NackRecord } from './stream-status.js';
import { SubscriptionState } from './subscription-state.js';

/** Our versions are short hashes; a longer one from a client is cut before it is kept. */
const MAX_VERSION_LENGTH = 128;
const STALE = { type: 'stale' } as const;
const NONE: readonly StoredSecret[] = [];
/** Nothing added, nothing removed: read only, never changed (the driver only reads empty lists). */
const NO_CHANGE = Object.freeze({ added: Object.freeze([]) as unknown as string[], removed: Object.freeze([]) as unknown as string[] });

/**
 * Protocol state of one state-of-the-world stream (StreamSecrets, or ADS for the Secret
 * type). No I/O: the driver feeds it requests and store changes and writes what it
 * builds. The delivery status it keeps is the stream's StreamStatus.
 */
export class SotwSession extends SubscriptionState implements Session<DiscoveryRequest> {
  private nonceSeq = 0;
  /** String(nonceSeq), made once per response rather than once per request. */
  private lastNonce = '';
  /** What the latest response carried (the array the driver pushed: no copy, no map). */
  private lastResponse: readonly StoredSecret[] = NONE;

  onRequest(req: DiscoveryRequest): RequestOutcome {
    const admitted = this.admit(req.type_url, req.node);
    if ('type' in admitted) return admitted;
    const { first } = admitted;

    const nonce = req.response_nonce ?? '';
    // Stale nonce: the client has not seen our latest response yet; it will send a
    // newer request, so this one is ignored whole. A nonce on a stream that has had no
    // response yet comes from an earlier stream: treat it as none.
    const answers = nonce !== '' && this.nonceSeq > 0;
    if (answers && nonce !== this.lastNonce) return STALE;

    const names = req.resource_names ?? [];
    const change = names.length === 1 ? this.changeToOne(names[0]!) : this.changeToMany(names);
    if ('type' in change) return change;
    const { added, removed } = change;
    if (!this.budget.fits(added, removed)) return tooManyNamesForIdentity(this.budget.limit);
    // Stored as the identity's copy of each name (one string however many streams ask);
    // shown in delivery status (NOT_SENT) until something is sent.
    for (let i = 0; i < added.length; i++) added[i] = this.hold(added[i]!);

    let ack = false;
    let nack: NackRecord | undefined;
    if (answers) {
      if (req.error_detail) {
        // NACK: the client keeps its previous version and waits for a new push. The
        // rejected payload is never re-sent: pushes happen only on a version change.
        // The message is bounded before it is kept: a client chooses its size.
        const message = nackMessage(req.error_detail.message, this.limits);
        const at = new Date(this.now());
        for (const s of this.lastResponse) {
          nack = { version: s.version, message, at };
          const e = this.delivery(s.name);
          if (e) e.lastNack = nack;
        }
      } else {
        // ACK: nothing to send back.
        ack = true;
        for (const s of this.lastResponse) {
          const e = this.delivery(s.name);
          if (e) e.acked = s.version;
        }
      }
    } else if (first && req.version_info) {
      // Reconnect: the client names the version it holds. Answered with the current
      // secret anyway (a new stream always gets one), but shown in status meanwhile.
      const held = boundedCopy(req.version_info, MAX_VERSION_LENGTH);
      for (const name of added) this.delivery(name)!.acked = held;
    }

    for (const name of removed) this.drop(name);
    return { type: 'accept', stale: false, ack, nack, added, removed };
  }

  /**
   * The subscription change a one-name request asks for: no Set and, for the usual
   * request (the same name again, an ACK), no array either. Envoy opens one stream per
   * secret, so this is nearly every request.
   */
  private changeToOne(name: string): Rejection | { added: string[]; removed: string[] } {
    const bad = checkName(name, this.limits);
    if (bad) return bad;
    const held = this.status.names;
    const subscribed = held.has(name);
    if (subscribed && held.size === 1) return NO_CHANGE;
    const removed: string[] = [];
    for (const n of held.keys()) if (n !== name) removed.push(n);
    return { added: subscribed ? [] : [name], removed };
  }

  private changeToMany(names: readonly string[]): Rejection | { added: string[]; removed: string[] } {
    const wanted = new Set(names);
    const bad = checkNames(wanted, wanted.size, this.limits);
    if (bad) return bad;
    const added: string[] = [];
    const removed: string[] = [];
    for (const name of wanted) {
      if (!this.isSubscribed(name)) added.push(name);
    }
    // SDS is not a wildcard type: an empty list means "unsubscribed from everything".
    for (const name of this.status.names.keys()) {
      if (!wanted.has(name)) removed.push(name);
    }
    return { added, removed };
  }

  /** State of the world has no removal for secrets. */
  needsRemoval(): boolean {
    return false;
  }

  /** Builds the response carrying these secrets (distinct names) and records them as sent. */
  buildResponse(secrets: readonly StoredSecret[]): ResponseParts {
    const nonce = (this.lastNonce = String(++this.nonceSeq));
    this.lastResponse = secrets;
    for (const s of secrets) {
      const e = this.delivery(s.name);
      if (e) e.sent = s.version;
    }
    return sotwResponse(secrets, nonce);
  }
}
