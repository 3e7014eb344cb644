import { constants, type Http2Session } from 'node:http2';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface ConnectionPolicyOptions {
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /** Client pings closer together than this are strikes (Envoy's shipped config pings every 30 s). */
  minClientPingIntervalMs: number;
  maxPingStrikes: number;
  /** Rapid resets allowed at once, and refilled per second (a token bucket). */
  rapidResetBurst: number;
  rapidResetRate: number;
}

export const DEFAULT_CONNECTION_POLICY: Omit<ConnectionPolicyOptions, 'keepaliveTimeMs' | 'keepaliveTimeoutMs'> = {
  minClientPingIntervalMs: 20_000,
  maxPingStrikes: 2,
  rapidResetBurst: 1000,
  rapidResetRate: 100,
};

/**
 * What one HTTP/2 connection is allowed, kept per connection:
 * - keepalive: the server pings every keepaliveTimeMs and closes a connection whose
 *   peer does not answer within keepaliveTimeoutMs (a dead gateway's streams go away);
 * - client pings: at most one per minClientPingIntervalMs, as grpc-go enforces it (a
 *   ping right after we sent data is free, since clients measure bandwidth that way);
 *   more than maxPingStrikes early pings close the connection (ENHANCE_YOUR_CALM);
 * - rapid reset (CVE-2023-44487): streams the client resets before their first request
 *   was processed draw from a token bucket; an empty bucket closes the connection.
 *   Cancelling streams that were served costs nothing here, so a gateway that drops
 *   thousands of streams at once keeps its connection.
 */
export class ConnectionPolicy {
  private lastClientPing = 0;
  private pingStrikes = 0;
  private pingAfterWriteFree = true;
  private resetTokens: number;
  private resetRefilledAt: number;
  private keepalive: NodeJS.Timeout | undefined;
  private pingTimeout: NodeJS.Timeout | undefined;
  private refused = false;

  constructor(
    private readonly session: Http2Session,
    private readonly opts: ConnectionPolicyOptions,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.resetTokens = opts.rapidResetBurst;
    this.resetRefilledAt = now();
  }

  start(): void {
    this.session.on('ping', () => this.onClientPing());
    this.keepalive = setInterval(() => this.sendPing(), this.opts.keepaliveTimeMs);
    this.keepalive.unref();
    this.session.once('close', () => this.stop());
  }

  stop(): void {
    clearInterval(this.keepalive);
    clearTimeout(this.pingTimeout);
  }

  /** A response was written on this connection. */
  noteWrite(): void {
    this.pingAfterWriteFree = true;
  }

  /** A stream was reset by the client before its first request was processed. */
  noteRapidReset(): void {
    this.metrics.rapidResets.inc();
    const now = this.now();
    this.resetTokens = Math.min(
      this.opts.rapidResetBurst,
      this.resetTokens + ((now - this.resetRefilledAt) / 1000) * this.opts.rapidResetRate,
    );
    this.resetRefilledAt = now;
    this.resetTokens -= 1;
    if (this.resetTokens < 0) this.refuse('rapid_reset', 'too many streams reset before their first request');
  }

  private onClientPing(): void {
    const now = this.now();
    if (this.pingAfterWriteFree) {
      this.pingAfterWriteFree = false;
    } else if (now - this.lastClientPing < this.opts.minClientPingIntervalMs) {
      this.pingStrikes++;
      if (this.pingStrikes > this.opts.maxPingStrikes) {
        this.refuse('too_many_pings', 'too_many_pings');
        return;
      }
    }
    this.lastClientPing = now;
  }

  private sendPing(): void {
    const { session } = this;
    if (session.destroyed || session.closed || this.pingTimeout) return;
    this.pingTimeout = setTimeout(() => {
      this.metrics.connectionsRefused.inc({ reason: 'keepalive_timeout' });
      this.logger.info({ peer: session.socket?.remoteAddress }, 'closing connection: keepalive ping not answered');
      session.destroy();
    }, this.opts.keepaliveTimeoutMs);
    this.pingTimeout.unref();
    try {
      session.ping(() => {
        clearTimeout(this.pingTimeout);
        this.pingTimeout = undefined;
      });
    } catch {
      // The session closed between the check and the ping.
    }
  }

  private refuse(reason: string, debug: string): void {
    const { session } = this;
    if (session.destroyed || this.refused) return;
    this.refused = true;
    this.metrics.connectionsRefused.inc({ reason });
    this.logger.warn({ peer: session.socket?.remoteAddress, reason }, 'closing connection: client broke the connection policy');
    // GOAWAY with the reason as debug data (grpc clients read "too_many_pings" to back
    // off), then the connection goes: a moment later, so the frame is flushed first.
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from(debug));
    setTimeout(() => session.destroy(), 200).unref();
  }
}
