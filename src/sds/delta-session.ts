import type { StoredSecret } from '../store/secret-material.js';
import { boundedCopy } from './bounded-text.js';
import type { DeltaDiscoveryRequest } from './messages.js';
import { checkNames, nackMessage, tooManyNamesForIdentity } from './request-checks.js';
import { deltaResponse, type ResponseParts } from './responses.js';
import type { RequestOutcome, Session } from './session.js';
import type { NackRecord } from './stream-status.js';
import { SubscriptionState } from './subscription-state.js';

/** How many unacknowledged responses a stream remembers, to attribute late ACKs. */
const IN_FLIGHT_LIMIT = 32;
/** Our versions are short hashes; a longer one from a client is cut before it is kept. */
const MAX_VERSION_LENGTH = 128;

/**
 * What one response sent: name, version, name, version... (strings, not the secrets:
 * an unacknowledged response must not keep an old version's material alive).
 */
type Carried = string[];

/**
 * Protocol state of one incremental stream (DeltaSecrets, or delta ADS for Secrets).
 * No I/O, like SotwSession.
 *
 * removed_resources is sent only when a secret the stream was sent is deleted from the
 * store, never for a name that merely does not exist yet: current Envoy would end
 * warming with no certificate, and older Envoys NACK it.
 */
export class DeltaSession extends SubscriptionState implements Session<DeltaDiscoveryRequest> {
  private nonceSeq = 0;
  /** nonce -> what that response carried; made on the first response. */
  private inFlight: Map<string, Carried> | undefined;

  onRequest(req: DeltaDiscoveryRequest): RequestOutcome {
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
      const carried = this.inFlight?.get(nonce);
      if (!carried) {
        stale = true;
      } else {
        this.inFlight!.delete(nonce);
        if (req.error_detail) {
          const message = nackMessage(req.error_detail.message, this.limits);
          const at = new Date(this.now());
          nack = { version: '', message, at };
          for (let i = 0; i < carried.length; i += 2) {
            const e = this.delivery(carried[i]!);
            if (e) e.lastNack = { version: carried[i + 1]!, message, at };
          }
        } else {
          ack = true;
          for (let i = 0; i < carried.length; i += 2) {
            const e = this.delivery(carried[i]!);
            if (e) e.acked = carried[i + 1]!;
          }
        }
      }
    }

    // Subscription changes apply even when the nonce is stale. Every name subscribed is
    // handed to the driver: what the client reports holding at the current version
    // (reconnect) is skipped by needsPush, the rest is sent.
    const initial = first ? (req.initial_resource_versions ?? {}) : {};
    const added: string[] = [];
    for (const requested of new Set(subscribe)) {
      const name = this.isSubscribed(requested) ? requested : this.hold(requested);
      const e = this.delivery(name)!;
      const reported = initial[name];
      // A version the client reports is kept in status: bounded like any client text.
      const held = reported ? boundedCopy(reported, MAX_VERSION_LENGTH) : undefined;
      // Subscribing again means "send it", even if we think the client has it.
      e.sent = held;
      if (held) e.acked = held;
      added.push(name);
    }
    const removed: string[] = [];
    for (const name of unsubscribe) {
      if (this.drop(name)) removed.push(name);
    }
    return { type: 'accept', stale, ack, nack, added, removed };
  }

  /** What the subscription becomes: names new to it, names leaving it, and its size. */
  private subscriptionAfter(subscribe: readonly string[], unsubscribe: readonly string[]) {
    const leaving = new Set(unsubscribe);
    const fresh = new Set<string>();
    for (const n of subscribe) if (!this.isSubscribed(n) && !leaving.has(n)) fresh.add(n);
    const dropping: string[] = [];
    for (const n of leaving) if (this.isSubscribed(n)) dropping.push(n);
    return { fresh, dropping, after: this.status.names.size + fresh.size - dropping.length };
  }

  /** A deleted secret is announced only to streams that were sent it. */
  needsRemoval(name: string): boolean {
    const e = this.delivery(name);
    return e !== undefined && !e.denied && e.sent !== undefined;
  }

  buildResponse(secrets: readonly StoredSecret[], removed: readonly string[] = []): ResponseParts {
    const nonce = String(++this.nonceSeq);
    const carried: Carried = [];
    for (const s of secrets) {
      const e = this.delivery(s.name);
      if (e) e.sent = s.version;
      carried.push(s.name, s.version);
    }
    for (const name of removed) {
      const e = this.delivery(name);
      if (e) e.sent = e.acked = undefined;
    }
    const inFlight = (this.inFlight ??= new Map());
    inFlight.set(nonce, carried);
    if (inFlight.size > IN_FLIGHT_LIMIT) {
      for (const oldest of inFlight.keys()) {
        inFlight.delete(oldest);
        break;
      }
    }
    return deltaResponse(secrets, removed, nonce);
  }
}
