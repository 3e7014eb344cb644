// A TLS peer fed over SDS the way Envoy is: one StreamSecrets stream per name (its
// certificate and its validation context), every push applied to its TLS context and then
// ACKed, reconnecting with its last ACKed version when the server goes away (a restart).
// A test can make it slow (hold a name's pushes unapplied and unACKed until released) or
// reject a name's pushes (NACK, keeping what it had), as a real gateway may.
//
// Two of them handshake with mutual TLS: `server()` makes this peer a TLS server whose
// context is replaced on every push; `handshake()` connects to another peer as a client
// with the material it holds at that moment.

import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { FakeEnvoy, pemOf, type SotwResponse, type SotwStream } from './fake-envoy.js';

export type PushPolicy = 'apply' | 'hold' | 'nack';

interface Material {
  cert?: string;
  key?: string;
  ca?: string;
}

export interface SdsTlsPeerOptions {
  /** The SDS server's address, asked at every (re)connect: a restarted server has a new port. */
  target: () => string;
  node: { id: string; cluster: string };
  certName: string;
  caName: string;
}

export class SdsTlsPeer {
  readonly material: Material = {};
  private readonly policies = new Map<string, PushPolicy>();
  private readonly held = new Map<string, { stream: SotwStream; res: SotwResponse }>();
  /** Per name, the last version applied and ACKed. */
  readonly acked = new Map<string, string>();
  private readonly envoys: FakeEnvoy[] = [];
  private stopped = false;
  private tlsServer: tls.Server | undefined;
  private readonly applied: Array<() => void> = [];
  /** Every push this peer applied, in order: name and version. */
  readonly log: Array<{ name: string; version: string }> = [];

  constructor(private readonly opts: SdsTlsPeerOptions) {}

  start(): void {
    for (const name of [this.opts.certName, this.opts.caName]) void this.follow(name);
  }

  /** Resolves when the peer holds a certificate, its key and a CA bundle. */
  async ready(timeoutMs = 30_000): Promise<void> {
    await this.until(
      () => Boolean(this.material.cert && this.material.key && this.material.ca),
      timeoutMs,
      `${this.opts.node.id} to hold its material`,
    );
  }

  /** From now on, pushes of `name` are applied, held (not applied, not ACKed) or NACKed. */
  setPolicy(name: string, policy: PushPolicy): void {
    this.policies.set(name, policy);
    if (policy === 'apply') {
      const h = this.held.get(name);
      this.held.delete(name);
      if (h) this.apply(name, h.stream, h.res);
    }
  }

  /** Whether a push of `name` is being held back. */
  holding(name: string): boolean {
    return this.held.has(name);
  }

  async until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const start = Date.now();
    while (!fn()) {
      if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.applied.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private async follow(name: string): Promise<void> {
    let backoffMs = 100;
    while (!this.stopped) {
      const envoy = new FakeEnvoy(this.opts.target(), { node: this.opts.node });
      this.envoys.push(envoy);
      const stream = envoy.sotw();
      // Envoy's first request after a reconnect carries the version it last ACKed.
      stream.request({ names: [name], version: this.acked.get(name) ?? '' });
      try {
        for (;;) {
          const res = await stream.response(3_600_000);
          backoffMs = 100;
          const policy = this.policies.get(name) ?? 'apply';
          if (policy === 'hold') this.held.set(name, { stream, res });
          else if (policy === 'nack') stream.nack(res, `rejected by test policy: ${name}`);
          else this.apply(name, stream, res);
        }
      } catch {
        // The stream ended (server stopped or restarted): reconnect, as Envoy does.
      }
      envoy.close();
      this.envoys.splice(this.envoys.indexOf(envoy), 1);
      this.held.delete(name);
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, backoffMs));
      backoffMs = Math.min(backoffMs * 2, 1000);
    }
  }

  private apply(name: string, stream: SotwStream, res: SotwResponse): void {
    const secret = res.secrets[0];
    if (!secret) return;
    if (secret.tls_certificate) {
      this.material.cert = pemOf(secret.tls_certificate.certificate_chain);
      this.material.key = pemOf(secret.tls_certificate.private_key);
    } else if (secret.validation_context) {
      this.material.ca = pemOf(secret.validation_context.trusted_ca);
    }
    // A TLS server takes the new context for new handshakes, as Envoy does.
    if (this.tlsServer && this.material.cert && this.material.key && this.material.ca)
      this.tlsServer.setSecureContext(this.contextOptions());
    this.log.push({ name, version: res.version_info });
    if (!stream.ended) stream.ack(res);
    this.acked.set(name, res.version_info);
    for (const w of this.applied.splice(0)) w();
  }

  private contextOptions(): tls.SecureContextOptions {
    return { cert: this.material.cert!, key: this.material.key!, ca: this.material.ca! };
  }

  /** Serves mutual TLS on loopback with the pushed material; returns the port. */
  async server(): Promise<number> {
    const server = tls.createServer({ ...this.contextOptions(), requestCert: true, rejectUnauthorized: true }, (socket) => {
      socket.on('data', (d) => socket.end(`echo:${d}`));
      socket.on('error', () => undefined);
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.tlsServer = server;
    return (server.address() as AddressInfo).port;
  }

  /** One mutual-TLS handshake and echo to `port` with the material held now; rejects with why it failed. */
  handshake(port: number, servername: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername, ...this.contextOptions() });
      const timer = setTimeout(() => socket.destroy(new Error('handshake timed out')), 5000);
      let reply = '';
      socket.once('secureConnect', () => socket.write('ping'));
      socket.on('data', (d: Buffer) => (reply += d.toString()));
      socket.once('end', () => {
        clearTimeout(timer);
        socket.destroy();
        if (reply === 'echo:ping') resolve();
        else reject(new Error(`no echo (got "${reply}"): the server refused the client certificate`));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const e of this.envoys) e.close();
    await new Promise<void>((r) => (this.tlsServer ? this.tlsServer.close(() => r()) : r()));
  }
}

/** Handshakes from `client` to `port` in a loop until stopped; counts and keeps the failures. */
export class HandshakeLoop {
  ok = 0;
  readonly failures: Array<{ at: string; error: string }> = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(client: SdsTlsPeer, port: number, servername: string, pauseMs = 20) {
    this.done = (async () => {
      while (this.running) {
        try {
          await client.handshake(port, servername);
          this.ok++;
        } catch (err) {
          this.failures.push({ at: new Date().toISOString(), error: (err as Error).message });
        }
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}
