// What can stop the server from starting, said as the config field to fix: files the
// listeners read, and addresses they bind. Works on grpc-js's bind errors (which carry
// the errno only in their message) and on plain Node errors (`code`, `path`).

import { accessSync, constants } from 'node:fs';
import { ConfigError } from './config-error.js';
import type { ServerConfig } from './server-config.js';

/** Throws a ConfigError naming the field when a file a listener needs cannot be read. */
export function checkListenerFiles(config: ServerConfig): void {
  const tls = config.grpc.tcp?.tls;
  if (!tls) return;
  const files: Array<[string, string | undefined]> = [
    ['grpc.tcp.tls.certFile', tls.certFile],
    ['grpc.tcp.tls.keyFile', tls.keyFile],
    ['grpc.tcp.tls.clientCaFile', tls.clientCaFile],
  ];
  for (const [field, path] of files) {
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError(field, `cannot read ${path} (${code}); point it at a readable PEM file`);
    }
  }
}

const ERRNO = /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES|EPERM|ENOENT|ENOTDIR|EROFS|EAFNOSUPPORT|EINVAL|ENOTFOUND|EAI_AGAIN)\b/;

const ADVICE: Record<string, string> = {
  EADDRINUSE: 'the address is already in use; stop what holds it or choose another port',
  EADDRNOTAVAIL: 'no interface on this machine has that address; use one it has, or 0.0.0.0',
  EACCES: 'permission denied; use a port above 1023 or a path this user may write',
  EPERM: 'permission denied; use a port above 1023 or a path this user may write',
  ENOENT: 'the directory does not exist and cannot be created',
  ENOTDIR: 'a parent of the path is not a directory',
  EROFS: 'the file system is read-only; choose a writable path',
  EAFNOSUPPORT: 'this machine does not support that address family',
  EINVAL: 'the address is not valid here',
  ENOTFOUND: 'the host name does not resolve; use an IP address',
  EAI_AGAIN: 'the host name does not resolve; use an IP address',
};

/** A listener that failed to bind, as a ConfigError on `field` (e.g. `http.address`). */
export function bindError(err: unknown, field: string, address: string): ConfigError {
  if (err instanceof ConfigError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' && ADVICE[e.code] ? e.code : ERRNO.exec(String(e.message ?? ''))?.[1];
  const why = code ? `${ADVICE[code]} (${code})` : `cannot listen (${String(e.message ?? err).split('\n')[0]})`;
  return new ConfigError(field, `${address}: ${why}`);
}
