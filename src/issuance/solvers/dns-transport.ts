// Sends one DNS message and returns the raw response, over TCP (two-octet length prefix,
// RFC 1035 section 4.2.2) or UDP. Errors are DnsUpdateError with DNS_TIMEOUT or
// DNS_CONNECTION_FAILED; the caller decodes and checks the response.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP, connect, type Socket as TcpSocket } from 'node:net';
import { DnsUpdateError } from './dns-update-error.js';

export interface DnsServer {
  host: string;
  port: number;
}

// Messages name the transport, not the server: the caller prefixes what it was doing
// and where.
function timeoutError(transport: string, timeoutMs: number): DnsUpdateError {
  return new DnsUpdateError('DNS_TIMEOUT', `no answer over ${transport} within ${timeoutMs} ms`);
}

function connectionError(transport: string, err: unknown): DnsUpdateError {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new DnsUpdateError('DNS_CONNECTION_FAILED', `cannot reach the server over ${transport}: ${reason}`, { cause: err });
}

export function exchangeTcp(server: DnsServer, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let socket: TcpSocket | undefined;
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | undefined, response?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket?.destroy();
      if (err) reject(err);
      else resolve(response as Buffer);
    };
    const timer = setTimeout(() => finish(timeoutError('TCP', timeoutMs)), timeoutMs);
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(query.length, 0);
    socket = connect({ host: server.host, port: server.port });
    socket.on('connect', () => socket?.write(Buffer.concat([prefix, query])));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (received.length >= 2 + length) finish(undefined, received.subarray(2, 2 + length));
    });
    socket.on('error', (err) => finish(connectionError('TCP', err)));
    socket.on('end', () => {
      finish(
        new DnsUpdateError(
          'DNS_CONNECTION_FAILED',
          `the server closed the TCP connection before a full answer (${received.length} bytes received)`,
        ),
      );
    });
  });
}

/**
 * Sends over UDP and waits for the datagram whose ID matches, resending twice within the
 * timeout (an UPDATE is safe to repeat: adding a present RR or deleting an absent one is
 * a no-op).
 */
export function exchangeUdp(server: DnsServer, query: Buffer, timeoutMs: number): Promise<Buffer> {
  const id = query.readUInt16BE(0);
  return new Promise((resolve, reject) => {
    let socket: UdpSocket | undefined;
    const resend: NodeJS.Timeout[] = [];
    let done = false;
    const finish = (err: Error | undefined, response?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resend.forEach(clearTimeout);
      try {
        socket?.close();
      } catch {
        // already closed
      }
      socket = undefined;
      if (err) reject(err);
      else resolve(response as Buffer);
    };
    const timer = setTimeout(() => finish(timeoutError('UDP', timeoutMs)), timeoutMs);
    socket = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    socket.on('error', (err) => finish(connectionError('UDP', err)));
    socket.on('message', (msg) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === id) finish(undefined, msg);
    });
    const send = () => socket?.send(query, (err) => err && finish(connectionError('UDP', err)));
    // A connected socket only accepts datagrams from the server, and gets ICMP errors.
    // Node passes a failed lookup or connect to this callback instead of emitting 'error'.
    socket.connect(server.port, server.host, ((err?: Error) => {
      if (err) {
        finish(connectionError('UDP', err));
        return;
      }
      send();
      resend.push(setTimeout(send, timeoutMs / 3), setTimeout(send, (2 * timeoutMs) / 3));
    }) as () => void);
  });
}
