import type { StoredSecret } from '../store/secret-material.js';
import { boundedCopy } from './bounded-text.js';
import type { DeltaDiscoveryRequest } from './messages.js';
import { checkNames, nackMessage, tooManyNamesForIdentity, type Rejection } from './request-checks.js';
import { encodeSecret, TYPE_URL_FIELD } from './secret-encoding.js';
import type { NackRecord } from './stream-status.js';
import { SubscriptionState } from './subscription-state.js';
import { stringField } from './wire.js';

export type DeltaVerdict =
  | Rejection
  | {
      type: 'accept';
      stale: boolean;
      ack: boolean;
      nack: NackRecord | undefined;
      /** Newly subscribed, or subscribed again: send the current version. */
      added: string[];
      /** Subscribed, but the client already holds the current version (reconnect). */
      skipIfCurrent: Map<string, string>;
      removed: string[];
    };

/** How many unacknowledged responses a stream remembers, to attribute late ACKs. */
const IN_FLIGHT_LIMIT = 32;
/** Our versions are short hashes; a longer one from a client is cut before it is kept. */
const MAX_VERSION_LENGTH = 128;

/**
 * Protocol state of one incremental stream (DeltaSecrets, or delta ADS for Secrets).
 * No I/O, like SotwSession.
 */
export class DeltaSession extends SubscriptionState {
  private nonceSeq = 0;
  /** nonce -> what that response carried (name -> version, '' for a removal). */
  private readonly inFlight = new Map<string, Map<string, string>>();

  onRequest(req: DeltaDiscoveryRequest): DeltaVerdict {
    const admitted = this.admit(req.type_url, req.node);
    if ('type' in admitted) return admitted;
    const { first } = admitted;

    // '*' would mean a wildcard subscription; SDS is not a wildcard type.
    const subscribe = (req.resource_names_subscribe ?? []).filter((n) => n !== '*');
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    // The limit applies to the subscription after this request: a stream at the limit
    // may swap a name, or subscribe again to a name it holds.
    const { fresh, dropping, after } = this.subscriptionAfter(subscribe, unsubscribe);
    const bad = checkNames(subscribe, after, this.limits);
    if (bad) return bad;
    if (!this.budget.fits(fresh, dropping)) return tooManyNamesForIdentity(this.budget.limit);

    let ack = false;
    let nack: NackRecord | undefined;
    let stale = false;
    const nonce = req.response_nonce ?? '';
    if (nonce !== '') {
      const carried = this.inFlight.get(nonce);
      if (!carried) {
        stale = true;
      } else {
        this.inFlight.delete(nonce);
        if (req.error_detail) {
          nack = { version: '', message: nackMessage(req.error_detail.message, this.limits), at: new Date() };
          for (const [name, version] of carried) {
            this.status.entry(name).lastNack = { ...nack, version };
          }
        } else {
          ack = true;
          for (const [name, version] of carried) {
            if (version !== '' && this.subscribed.has(name)) this.status.entry(name).acked = version;
          }
        }
      }
    }

    // Subscription changes apply even when the nonce is stale.
    const initial = first ? (req.initial_resource_versions ?? {}) : {};
    const added: string[] = [];
    const skipIfCurrent = new Map<string, string>();
    for (const requested of new Set(subscribe)) {
      const name = this.subscribed.has(requested) ? requested : this.hold(requested);
      const reported = initial[name];
      // A version the client reports is kept in status: bounded like any client text.
      const held = reported ? boundedCopy(reported, MAX_VERSION_LENGTH) : undefined;
      if (held) {
        skipIfCurrent.set(name, held);
        this.status.entry(name).acked = held;
        this.status.entry(name).sent = held;
      } else {
        // Subscribing again means "send it", even if we think the client has it.
        const e = this.status.entry(name);
        delete e.sent;
        added.push(name);
      }
    }
    const removed: string[] = [];
    for (const name of unsubscribe) {
      if (this.drop(name)) removed.push(name);
    }
    return { type: 'accept', stale, ack, nack, added, skipIfCurrent, removed };
  }

  /** What the subscription becomes: names new to it, names leaving it, and its size. */
  private subscriptionAfter(subscribe: readonly string[], unsubscribe: readonly string[]) {
    const leaving = new Set(unsubscribe);
    const fresh = new Set<string>();
    for (const n of subscribe) if (!this.subscribed.has(n) && !leaving.has(n)) fresh.add(n);
    const dropping: string[] = [];
    for (const n of leaving) if (this.subscribed.has(n)) dropping.push(n);
    return { fresh, dropping, after: this.subscribed.size + fresh.size - dropping.length };
  }

  /** A deleted secret is announced only to streams that were sent it. */
  needsRemoval(name: string): boolean {
    if (!this.subscribed.has(name)) return false;
    const e = this.status.names.get(name);
    return !e?.denied && e?.sent !== undefined;
  }

  buildResponse(secrets: readonly StoredSecret[], removedNames: readonly string[] = []): Buffer {
    const nonce = String(++this.nonceSeq);
    const carried = new Map<string, string>();
    const parts: Buffer[] = [];
    for (const s of secrets) {
      parts.push(encodeSecret(s).deltaResourceField);
      carried.set(s.name, s.version);
      this.status.entry(s.name).sent = s.version;
    }
    parts.push(TYPE_URL_FIELD);
    for (const name of removedNames) {
      parts.push(stringField(6, name));
      carried.set(name, '');
      const e = this.status.entry(name);
      delete e.sent;
      delete e.acked;
    }
    parts.push(stringField(5, nonce));
    this.inFlight.set(nonce, carried);
    if (this.inFlight.size > IN_FLIGHT_LIMIT) {
      const oldest = this.inFlight.keys().next().value;
      if (oldest !== undefined) this.inFlight.delete(oldest);
    }
    return Buffer.concat(parts);
  }
}
