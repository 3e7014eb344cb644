import { authenticationFailureMessage } from '../authz/authentication-error.js';
import type { Authenticator, Authorizer, PeerInfo } from '../authz/authorizer.js';
import type { CallerIdentity } from '../authz/identity.js';
import type { KeyDeliveryAudit } from '../observability/key-delivery-audit.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SecretStore } from '../store/secret-store.js';
import type { StoredSecret } from '../store/secret-material.js';
import { END_OK, type CallEnd } from './call-end.js';
import { followCredential, followsCredentials } from './credential-expiry.js';
import { recordDenied } from './denials.js';
import type { IdentityNames, NameBudget } from './identity-names.js';
import type { RateLimitedLog } from './rate-limited-log.js';
import type { RequestLimits } from './request-checks.js';
import type { SecretFanout, SecretWatcher } from './secret-fanout.js';
import type { Session } from './session.js';
import type { CallEvents, StreamCall } from './stream-call.js';
import type { EndableStream, StreamProtocol, StreamRegistry, StreamStatus } from './stream-status.js';
import type { Clock } from './subscription-state.js';

/** The counters a stream moves. */
export type StreamMetrics = Pick<
  Metrics,
  'streamsTotal' | 'streamsOpen' | 'denied' | 'pushes' | 'badRequests' | 'staleNonces' | 'acks' | 'nacks'
>;

/** What the stream layer is handed: narrow views, no concrete store or transport. */
export interface StreamDeps {
  store: Pick<SecretStore, 'get' | 'watch'>;
  authenticator: Authenticator;
  authorizer: Authorizer;
  registry: StreamRegistry;
  metrics: StreamMetrics;
  logger: Logger;
  limits: RequestLimits;
  /** Distinct names per caller identity, across its streams. */
  identityNames: IdentityNames;
  /** Warnings clients can cause (denials, NACKs, refused requests), rate-limited. */
  clientLog: RateLimitedLog;
  /** The private-key audit trail (first delivery of each key version to each identity). */
  audit?: Pick<KeyDeliveryAudit, 'delivered'>;
  /** Wall clock for delivery status; Date.now unless a test moves it. */
  now?: Clock;
}

/** What every stream of one RPC shares, built once per method: a stream holds one pointer to it. */
export interface StreamMethod<Req> {
  readonly rpc: string;
  readonly protocol: StreamProtocol;
  /** The label of the ACK and NACK counters. */
  readonly family: 'sotw' | 'delta';
  readonly deps: StreamDeps;
  readonly fanout: SecretFanout;
  createSession(status: StreamStatus, budget: NameBudget): Session<Req>;
}

const NO_NAMES: readonly string[] = [];

/**
 * One stream's loop, for every streaming RPC: authentication, then each request applied
 * by the session (the protocol, handed in as an interface), authorization before every
 * send, coalesced pushes and back-pressure. Requests and pushes run one at a time, in
 * order; a synchronous step on an idle stream runs at once (no promise, no tick).
 *
 * A slow stream never queues: while the call's buffer is full, changed names are only
 * remembered, and the newest version of each is written on `drain`.
 */
export class StreamDriver<Req> implements CallEvents<Req>, EndableStream, SecretWatcher {
  private session: Session<Req> | undefined;
  private identity: CallerIdentity | undefined;
  /** The caller as logged and audited: the identity budget's string, shared by its streams. */
  private label = 'unknown';
  private childLog: Logger | undefined;
  /** Names changed in the store since the last push; made on the first change. */
  private pending: Set<string> | undefined;
  /** Denied names waiting for a grant: name -> cancel; made on the first denial. */
  private grantWaits: Map<string, () => void> | undefined;
  private stopFollowingCredential: (() => void) | undefined;
  /** The last step still running; undefined when the stream is idle. */
  private tail: Promise<void> | undefined;
  private flushQueued = false;
  private blocked = false;
  private closed = false;

  constructor(
    private readonly call: StreamCall<Req>,
    private readonly method: StreamMethod<Req>,
    private readonly peer: PeerInfo,
  ) {}

  start(): void {
    this.method.deps.metrics.streamsTotal.inc({ protocol: this.method.protocol });
    // Requests that arrive while authentication runs wait behind it, in order.
    this.serially(() => this.authenticate());
    this.call.listen(this);
  }

  request(req: Req): void {
    this.serially(() => (this.session && !this.closed ? this.onRequest(this.session, req) : undefined));
  }

  halfClose(): void {
    this.endOk();
  }

  cancel(): void {
    this.cleanup();
  }

  drain(): void {
    this.blocked = false;
    this.queueFlush();
  }

  /** Ends the stream with OK: the client reconnects (to this or another replica). */
  endOk(): void {
    if (this.closed) return;
    this.call.end(END_OK);
    this.cleanup();
  }

  secretChanged(name: string): void {
    if (this.closed) return;
    (this.pending ??= new Set()).add(name);
    this.queueFlush();
  }

  /** Synchronous when the authenticator answers synchronously (no promise per stream). */
  private authenticate(): void | Promise<void> {
    let identity: CallerIdentity | Promise<CallerIdentity>;
    try {
      identity = this.method.deps.authenticator.authenticate(this.peer);
    } catch (err) {
      this.authenticationFailed(err);
      return;
    }
    if (!(identity instanceof Promise)) {
      this.authenticated(identity);
      return;
    }
    return identity.then(
      (id) => this.authenticated(id),
      (err: unknown) => this.authenticationFailed(err),
    );
  }

  private authenticationFailed(err: unknown): void {
    this.fail({ reason: 'unauthenticated', message: authenticationFailureMessage(err) }, err);
  }

  private authenticated(identity: CallerIdentity): void {
    if (this.closed) return;
    const { deps, protocol } = this.method;
    this.identity = identity;
    this.call.authenticated?.(identity);
    if (followsCredentials(deps.authenticator)) {
      this.stopFollowingCredential = followCredential(deps.authenticator, identity, (reason) =>
        this.fail({ reason: 'unauthenticated', message: reason }),
      );
    }
    const budget = deps.identityNames.budgetFor(identity);
    this.label = budget.identity;
    this.session = this.method.createSession(deps.registry.open(protocol, identity, this), budget);
    deps.metrics.streamsOpen.inc({ protocol });
  }

  private onRequest(session: Session<Req>, req: Req): void | Promise<void> {
    const outcome = session.onRequest(req);
    const { deps, family } = this.method;
    switch (outcome.type) {
      case 'reject':
        deps.metrics.badRequests.inc({ reason: outcome.reason });
        this.fail(outcome);
        return;
      case 'stale':
        // Stale nonce: ignore; the client sends a newer request.
        deps.metrics.staleNonces.inc();
        return;
      case 'accept':
        break;
    }
    if (outcome.stale) deps.metrics.staleNonces.inc();
    if (outcome.ack) deps.metrics.acks.inc({ protocol: family });
    if (outcome.nack) {
      // NACK: count, log, expose; wait for a changed secret before pushing again.
      deps.metrics.nacks.inc({ protocol: family });
      const { version, message } = outcome.nack;
      deps.clientLog.warn(
        'nack',
        this.log,
        { node: session.status.node?.id, version: version || undefined, message },
        'client rejected secret (NACK)',
      );
    }
    this.unsubscribe(outcome.removed);
    if (outcome.added.length === 0) return;
    const toSend = this.subscribe(session, outcome.added);
    if (Array.isArray(toSend)) this.send(toSend);
    else return toSend.then((secrets) => this.send(secrets));
  }

  /**
   * Subscribes names: authorizes each, watches it, and returns what exists to send now
   * (a secret that does not exist yet is pushed when it appears). Synchronous while the
   * authorizer answers synchronously; otherwise one name at a time, as asked.
   */
  private subscribe(session: Session<Req>, names: readonly string[]): StoredSecret[] | Promise<StoredSecret[]> {
    const toSend: StoredSecret[] = [];
    const denied: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const decision = this.canRead(names[i]!);
      if (typeof decision !== 'boolean') return this.subscribeRest(session, names, i, decision, toSend, denied);
      this.admit(session, names[i]!, decision, toSend, denied);
    }
    this.recordDenied(denied);
    return toSend;
  }

  private async subscribeRest(
    session: Session<Req>,
    names: readonly string[],
    from: number,
    first: Promise<boolean>,
    toSend: StoredSecret[],
    denied: string[],
  ): Promise<StoredSecret[]> {
    this.admit(session, names[from]!, await first, toSend, denied);
    for (let i = from + 1; i < names.length; i++) {
      this.admit(session, names[i]!, await this.canRead(names[i]!), toSend, denied);
    }
    this.recordDenied(denied);
    return toSend;
  }

  private admit(session: Session<Req>, name: string, allowed: boolean, toSend: StoredSecret[], denied: string[]): void {
    // The stream may have ended, or dropped the name, while authorization ran.
    if (this.closed || !session.isSubscribed(name)) return;
    if (!allowed) {
      session.deny(name);
      this.waitForGrant(session, name);
      denied.push(name);
      return;
    }
    this.method.fanout.add(name, this);
    const secret = this.method.deps.store.get(name);
    if (secret && session.needsPush(secret)) toSend.push(secret);
  }

  /** An authorizer that fails answers "no": the name is denied, never sent by mistake. */
  private canRead(name: string): boolean | Promise<boolean> {
    const decision = this.method.deps.authorizer.canRead(this.identity!, name);
    return typeof decision === 'boolean' ? decision : decision.catch(() => false);
  }

  private unsubscribe(names: readonly string[]): void {
    for (const name of names) {
      this.method.fanout.remove(name, this);
      this.pending?.delete(name);
      const cancel = this.grantWaits?.get(name);
      if (cancel) {
        cancel();
        this.grantWaits!.delete(name);
      }
    }
  }

  /**
   * A denied name is served as soon as authorization allows it (a RoleBinding created
   * later), without waiting for the client to reconnect: the authorizer says when.
   */
  private waitForGrant(session: Session<Req>, name: string): void {
    const { authorizer } = this.method.deps;
    if (!authorizer.watchGrant || !this.identity || this.grantWaits?.has(name)) return;
    const cancel = authorizer.watchGrant(this.identity, name, () => {
      this.grantWaits?.delete(name);
      this.serially(async () => {
        if (this.closed || !session.isSubscribed(name)) return;
        session.allow(name);
        // Authorizes again, watches the name, and sends the current version.
        this.send(await this.subscribe(session, [name]));
      });
    });
    (this.grantWaits ??= new Map()).set(name, cancel);
  }

  private queueFlush(): void {
    if (this.flushQueued || !this.pending || this.blocked) return;
    this.flushQueued = true;
    this.serially(() => this.flush());
  }

  private flush(): void | Promise<void> {
    this.flushQueued = false;
    const { session, pending } = this;
    if (this.blocked || this.closed || !session || !pending) return;
    this.pending = undefined;
    const { store, authorizer } = this.method.deps;
    const candidates: StoredSecret[] = [];
    const removed: string[] = [];
    for (const name of pending) {
      const secret = store.get(name);
      if (secret) {
        if (session.needsPush(secret)) candidates.push(secret);
      } else if (session.needsRemoval(name)) {
        removed.push(name);
      }
    }
    if (candidates.length === 0 && removed.length === 0) return;
    // Authorization is asked again before every push (a RoleBinding may be gone).
    const decisions = candidates.map((s) => authorizer.canRead(this.identity!, s.name));
    if (decisions.every((d) => d === true)) {
      this.send(candidates, removed);
      return;
    }
    return Promise.all(decisions.map((d) => Promise.resolve(d).catch(() => false))).then((ok) => {
      const allowed: StoredSecret[] = [];
      const denied: string[] = [];
      candidates.forEach((s, i) => {
        if (ok[i]) {
          allowed.push(s);
        } else if (session.isSubscribed(s.name)) {
          session.deny(s.name);
          this.waitForGrant(session, s.name);
          denied.push(s.name);
        }
      });
      this.recordDenied(denied);
      this.send(allowed, removed);
    });
  }

  private send(secrets: readonly StoredSecret[], removed: readonly string[] = NO_NAMES): void {
    const session = this.session;
    if (this.closed || !session || (secrets.length === 0 && removed.length === 0)) return;
    const { deps, protocol } = this.method;
    const bytes = session.buildResponse(secrets, removed);
    deps.audit?.delivered(this.label, secrets);
    deps.metrics.pushes.inc({ protocol }, secrets.length);
    if (deps.logger.isLevelEnabled('debug')) {
      this.log.debug({ node: session.status.node?.id, secrets: secrets.map((s) => `${s.name}@${s.version}`), removed }, 'push');
    }
    if (!this.call.write(bytes)) this.blocked = true;
  }

  private recordDenied(names: readonly string[]): void {
    if (names.length > 0) recordDenied(this.method.deps, this.log, this.label, names);
  }

  /** Created on first use: most streams never log, and a child logger per stream costs memory. */
  private get log(): Logger {
    this.childLog ??= this.method.deps.logger.child({ rpc: this.method.rpc, peer: this.peer.address });
    return this.childLog;
  }

  /**
   * Runs one step after the steps before it. On an idle stream a synchronous step runs
   * at once; a step that returns a promise makes the stream busy until it settles.
   */
  private serially(step: () => void | Promise<void>): void {
    if (this.tail) {
      this.busyUntil(this.tail.then(step));
      return;
    }
    let result: void | Promise<void>;
    try {
      result = step();
    } catch (err) {
      this.internalError(err);
      return;
    }
    if (result) this.busyUntil(result);
  }

  private busyUntil(work: Promise<void>): void {
    const tail: Promise<void> = work
      .then(undefined, (err: unknown) => this.internalError(err))
      .then(() => {
        if (this.tail === tail) this.tail = undefined;
      });
    this.tail = tail;
  }

  private internalError(err: unknown): void {
    this.fail({ reason: 'internal', message: 'internal error' }, err);
  }

  private fail(end: CallEnd, err?: unknown): void {
    if (this.closed) return;
    const reason = err instanceof Error ? err.message : undefined;
    this.method.deps.clientLog.warn('stream-failed', this.log, { identity: this.label, reason: end.reason, err: reason }, end.message);
    this.call.end(end);
    this.cleanup();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = undefined;
    this.stopFollowingCredential?.();
    if (this.grantWaits) for (const cancel of this.grantWaits.values()) cancel();
    this.grantWaits = undefined;
    const session = this.session;
    if (!session) return;
    const { deps, fanout, protocol } = this.method;
    for (const name of session.status.names.keys()) fanout.remove(name, this);
    session.close();
    deps.registry.close(session.status);
    deps.metrics.streamsOpen.dec({ protocol });
  }
}
