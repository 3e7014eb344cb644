// A TCP proxy in front of the API server that can go silent without closing anything:
// what a half-open connection or a black-holed network path looks like to a client.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class FreezableProxy {
  private server: Server | undefined;
  private frozen = false;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket | undefined }>();
  private readonly held: Array<() => void> = [];
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const pair: { client: Socket; upstream: Socket | undefined } = { client, upstream: undefined };
      this.pairs.add(pair);
      client.on('error', () => {});
      client.on('close', () => {
        pair.upstream?.destroy();
        this.pairs.delete(pair);
      });
      client.pause();
      const open = (): void => {
        const upstream = connect(this.targetPort, this.targetHost);
        pair.upstream = upstream;
        upstream.on('error', () => client.destroy());
        upstream.on('close', () => client.destroy());
        client.on('data', (b) => {
          if (!this.frozen) upstream.write(b);
        });
        upstream.on('data', (b) => {
          if (!this.frozen) client.write(b);
        });
        client.resume();
      };
      // While frozen, a new connection is accepted and then hears nothing.
      if (this.frozen) this.held.push(open);
      else open();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    this.port = addr.port;
  }

  /** Drops every byte from now on, both ways, keeping every connection open. */
  freeze(): void {
    this.frozen = true;
  }

  /**
   * Forwards again. Connections that lost bytes while frozen are closed (their TLS streams
   * are broken, as after a real partition); held new connections go through.
   */
  thaw(): void {
    this.frozen = false;
    for (const p of this.pairs) if (p.upstream) p.client.destroy();
    for (const open of this.held.splice(0)) open();
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
