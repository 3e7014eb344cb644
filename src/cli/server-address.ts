import { isIP } from 'node:net';
import { UsageError } from './arguments.js';

/** Where a client (or Envoy) reaches the server: a TCP host and port, or a Unix socket. */
export type ServerAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number; ip: boolean };

/**
 * Parses `host:port`, `[v6]:port` or `unix:/path`, refusing what Envoy or gRPC would
 * misread (a bare port, a port out of range, a relative socket path).
 */
export function parseServerAddress(value: string, flag = '--server'): ServerAddress {
  if (value.startsWith('unix:')) {
    const path = value.slice('unix:'.length).replace(/^\/\//, '/');
    if (!path.startsWith('/'))
      throw new UsageError(`${flag} ${value}: a Unix socket needs an absolute path (unix:/run/envoy-sds/sds.sock)`);
    return { kind: 'unix', path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) throw new UsageError(`${flag} ${value}: expected host:port, [ipv6]:port or unix:/path`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new UsageError(`${flag} ${value}: port ${port} is out of range (1-65535)`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new UsageError(`${flag} ${value}: [${host}] is not an IPv6 address`);
  if (m[2] !== undefined && !isIP(host) && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(host)) {
    throw new UsageError(`${flag} ${value}: "${host}" is not a host name or IP address`);
  }
  return { kind: 'tcp', host, port, ip: isIP(host) !== 0 };
}

/** The address as grpc-js wants it. */
export function grpcTarget(a: ServerAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
