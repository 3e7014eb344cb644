import { status as grpcStatus } from '@grpc/grpc-js';
import { authenticationFailureMessage } from '../authz/authentication-error.js';
import type { Authenticator, Authorizer, PeerInfo } from '../authz/authorizer.js';
import { describeIdentity, type CallerIdentity } from '../authz/identity.js';
import type { KeyDeliveryAudit } from '../observability/key-delivery-audit.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SecretStore } from '../store/secret-store.js';
import type { StoredSecret } from '../store/secret-material.js';
import { logDenied } from './denial-log.js';
import type { IdentityNames } from './identity-names.js';
import type { RateLimitedLog } from './rate-limited-log.js';
import type { RequestLimits } from './request-checks.js';
import { followCredential } from './credential-expiry.js';
import { SerialQueue } from './serial-queue.js';
import type { StreamCall } from './stream-call.js';
import type { StreamProtocol, StreamRegistry, StreamStatus } from './stream-status.js';

export interface StreamDeps {
  store: SecretStore;
  authenticator: Authenticator;
  authorizer: Authorizer;
  registry: StreamRegistry;
  metrics: Metrics;
  logger: Logger;
  limits: RequestLimits;
  /** Distinct names per caller identity, across its streams. */
  identityNames: IdentityNames;
  /** Warnings clients can cause (denials, NACKs, refused requests), rate-limited. */
  clientLog: RateLimitedLog;
  /** The private-key audit trail (first delivery of each key version to each identity). */
  audit?: KeyDeliveryAudit;
}

/** The protocol half of a stream: SotwSession or DeltaSession. */
export interface Session {
  readonly status: StreamStatus;
  needsPush(secret: StoredSecret): boolean;
  deny(name: string): void;
  allow(name: string): void;
  isSubscribed(name: string): boolean;
  subscriptions(): string[];
  /** The stream ended: releases what it held (its names' count for the identity). */
  close(): void;
}

/**
 * The I/O half shared by every streaming RPC: authentication, one store watch per
 * subscribed name, authorization before every send, coalesced pushes and back-pressure.
 *
 * A slow stream never queues: while the call's buffer is full, changed names are only
 * remembered, and the newest version of each is written on 'drain'.
 */
export abstract class StreamDriver<Req, S extends Session> {
  protected session: S | undefined;
  protected identity: CallerIdentity | undefined;
  private childLog: Logger | undefined;
  private readonly watches = new Map<string, () => void>();
  /** Denied names waiting for a grant: name -> cancel. */
  private readonly grantWaits = new Map<string, () => void>();
  private readonly dirty = new Set<string>();
  private readonly removedDirty = new Set<string>();
  private flushQueued = false;
  private blocked = false;
  private closed = false;
  private stopFollowingCredential: (() => void) | undefined;
  private readonly queue: SerialQueue;

  constructor(
    protected readonly call: StreamCall<Req>,
    protected readonly deps: StreamDeps,
    protected readonly rpc: string,
    private readonly protocol: StreamProtocol,
    private readonly peer: PeerInfo,
  ) {
    this.queue = new SerialQueue((err) => this.fail(grpcStatus.INTERNAL, 'internal error', err));
  }

  /** Builds the protocol session once the caller is known. */
  protected abstract createSession(status: StreamStatus): S;
  /** Applies one request; returns the names whose current version must be sent now. */
  protected abstract onRequest(req: Req): Promise<void> | void;
  /** Encodes a push of these secrets (and, for delta, removals). */
  protected abstract encodePush(secrets: StoredSecret[], removed: string[]): Buffer;
  /** Whether a deleted name must be announced (delta only). */
  protected abstract needsRemoval(name: string): boolean;

  start(): void {
    const { call, deps } = this;
    deps.metrics.streamsTotal.inc({ protocol: this.protocol });
    // Requests that arrive while authentication runs wait in the queue, in order.
    this.queue.run(async () => {
      try {
        this.identity = await deps.authenticator.authenticate(this.peer);
      } catch (err) {
        this.fail(grpcStatus.UNAUTHENTICATED, authenticationFailureMessage(err), err);
        return;
      }
      if (this.closed) return;
      call.authenticated?.(this.identity);
      this.stopFollowingCredential = followCredential(deps.authenticator, this.identity, (reason) =>
        this.fail(grpcStatus.UNAUTHENTICATED, reason),
      );
      const status = deps.registry.open(this.protocol, this.identity, () => this.endOk());
      this.session = this.createSession(status);
      deps.metrics.streamsOpen.inc({ protocol: this.protocol });
    });
    call.listen({
      request: (req) => this.queue.run(() => (this.session && !this.closed ? this.onRequest(req) : undefined)),
      halfClose: () => this.endOk(),
      cancel: () => this.cleanup(),
    });
  }

  /** Created on first use: most streams never log, and a child logger per stream costs memory. */
  protected get log(): Logger {
    this.childLog ??= this.deps.logger.child({ rpc: this.rpc, peer: this.peer.address });
    return this.childLog;
  }

  protected get identityLabel(): string {
    return this.identity ? describeIdentity(this.identity) : 'unknown';
  }

  /** Subscribes names: authorizes each, watches it, and sends what exists. */
  protected async subscribe(names: readonly string[]): Promise<StoredSecret[]> {
    const session = this.session!;
    const toSend: StoredSecret[] = [];
    const denied: string[] = [];
    for (const name of names) {
      if (!(await this.authorized(name))) {
        session.deny(name);
        this.waitForGrant(name);
        denied.push(name);
        continue;
      }
      if (!this.watches.has(name)) {
        this.watches.set(
          name,
          this.deps.store.watch(name, (n, s) => this.onStoreChange(n, s)),
        );
      }
      const secret = this.deps.store.get(name);
      // A secret that does not exist yet: remember the request, push when it appears.
      if (secret && session.needsPush(secret)) toSend.push(secret);
    }
    this.logDenied(denied);
    return toSend;
  }

  protected unsubscribe(names: readonly string[]): void {
    for (const name of names) {
      this.watches.get(name)?.();
      this.watches.delete(name);
      this.grantWaits.get(name)?.();
      this.grantWaits.delete(name);
      this.dirty.delete(name);
      this.removedDirty.delete(name);
    }
  }

  /**
   * A denied name is served as soon as authorization allows it (a RoleBinding created
   * later), without waiting for the client to reconnect: the authorizer says when.
   */
  private waitForGrant(name: string): void {
    const { authorizer } = this.deps;
    if (!authorizer.watchGrant || !this.identity || this.grantWaits.has(name)) return;
    const cancel = authorizer.watchGrant(this.identity, name, () => {
      this.grantWaits.delete(name);
      this.queue.run(async () => {
        const session = this.session;
        if (this.closed || !session?.isSubscribed(name)) return;
        session.allow(name);
        // Authorizes again, watches the name, and sends the current version.
        this.send(await this.subscribe([name]));
      });
    });
    this.grantWaits.set(name, cancel);
  }

  private authorized(name: string): boolean | Promise<boolean> {
    const decide = (ok: boolean): boolean => {
      if (!ok) this.deps.metrics.denied.inc();
      return ok;
    };
    const r = this.deps.authorizer.canRead(this.identity!, name);
    return typeof r === 'boolean' ? decide(r) : r.then(decide, () => decide(false));
  }

  private onStoreChange(name: string, secret: StoredSecret | undefined): void {
    if (this.closed) return;
    if (secret) this.dirty.add(name);
    else this.removedDirty.add(name);
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.queue.run(() => this.flush());
  }

  private flush(): void | Promise<void> {
    this.flushQueued = false;
    if (this.blocked || this.closed || !this.session) return;
    const session = this.session;
    const candidates: StoredSecret[] = [];
    for (const name of this.dirty) {
      const s = this.deps.store.get(name);
      if (s && session.needsPush(s)) candidates.push(s);
    }
    this.dirty.clear();
    const removed = [...this.removedDirty].filter((n) => !this.deps.store.get(n) && this.needsRemoval(n));
    this.removedDirty.clear();
    if (candidates.length === 0 && removed.length === 0) return;
    // Authorization is asked again before every push (a RoleBinding may be gone).
    const decisions = candidates.map((s) => this.deps.authorizer.canRead(this.identity!, s.name));
    if (decisions.every((d) => d === true)) {
      this.send(candidates, removed);
      return;
    }
    return Promise.all(decisions.map((d) => Promise.resolve(d))).then((ok) => {
      const allowed: StoredSecret[] = [];
      const denied: string[] = [];
      candidates.forEach((s, i) => {
        if (ok[i]) allowed.push(s);
        else {
          session.deny(s.name);
          this.waitForGrant(s.name);
          this.deps.metrics.denied.inc();
          denied.push(s.name);
        }
      });
      this.logDenied(denied);
      this.send(allowed, removed);
    });
  }

  /** One line per request however many names it denies, rate-limited (see denial-log.ts). */
  private logDenied(names: readonly string[]): void {
    if (names.length > 0) logDenied(this.deps.clientLog, this.log, this.identityLabel, names);
  }

  protected send(secrets: StoredSecret[], removed: string[] = []): void {
    if (this.closed || (secrets.length === 0 && removed.length === 0)) return;
    const bytes = this.encodePush(secrets, removed);
    this.deps.audit?.delivered(this.identityLabel, secrets);
    this.deps.metrics.pushes.inc({ protocol: this.protocol }, secrets.length);
    if (this.deps.logger.isLevelEnabled('debug')) {
      this.log.debug({ node: this.session?.status.node?.id, secrets: secrets.map((s) => `${s.name}@${s.version}`), removed }, 'push');
    }
    if (!this.call.write(bytes)) {
      this.blocked = true;
      this.call.onceDrain(() => {
        this.blocked = false;
        if (this.dirty.size > 0 || this.removedDirty.size > 0) this.queue.run(() => this.flush());
      });
    }
  }

  protected fail(code: grpcStatus, message: string, err?: unknown): void {
    if (this.closed) return;
    const reason = err instanceof Error ? err.message : undefined;
    this.deps.clientLog.warn('stream-failed', this.log, { identity: this.identityLabel, code: grpcStatus[code], err: reason }, message);
    this.call.end(code, message);
    this.cleanup();
  }

  /** Ends the stream with OK: the client reconnects (to this or another replica). */
  private endOk(): void {
    if (this.closed) return;
    this.call.end(grpcStatus.OK);
    this.cleanup();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopFollowingCredential?.();
    for (const stop of this.watches.values()) stop();
    this.watches.clear();
    for (const cancel of this.grantWaits.values()) cancel();
    this.grantWaits.clear();
    if (this.session) {
      this.session.close();
      this.deps.registry.close(this.session.status);
      this.deps.metrics.streamsOpen.dec({ protocol: this.protocol });
    }
  }
}
