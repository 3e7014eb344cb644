// What can stop the server from starting, said as the config field to fix: files the
// listeners read, and addresses they bind. Works on grpc-js's bind errors (which carry
// the errno only in their message) and on plain Node errors (`code`, `path`).

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './config-error.js';
import type { ServerConfig } from './server-config.js';

/**
 * Throws a ConfigError naming the field when a file a listener needs cannot be read, is
 * not PEM of the right kind, or (certificate and key) does not belong together. Checked
 * before binding, whichever transport binds, so the message is about the file.
 */
export function checkListenerFiles(config: ServerConfig): void {
  const tls = config.grpc.tcp?.tls;
  if (!tls) return;
  const cert = readPem('grpc.tcp.tls.certFile', tls.certFile);
  const key = readPem('grpc.tcp.tls.keyFile', tls.keyFile);
  const ca = tls.clientCaFile === undefined ? undefined : readPem('grpc.tcp.tls.clientCaFile', tls.clientCaFile);
  parsed('grpc.tcp.tls.certFile', tls.certFile, 'a PEM certificate', () => new X509Certificate(cert));
  parsed('grpc.tcp.tls.keyFile', tls.keyFile, 'a PEM private key', () => createPrivateKey(key));
  if (ca !== undefined) parsed('grpc.tcp.tls.clientCaFile', tls.clientCaFile!, 'a PEM CA certificate', () => new X509Certificate(ca));
  parsed('grpc.tcp.tls.keyFile', tls.keyFile, `the key of the certificate in ${tls.certFile}`, () => createSecureContext({ cert, key }));
}

function readPem(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(field, `cannot read ${path} (${code}); point it at a readable PEM file`);
  }
}

/** Runs a parse; its error (which never quotes key material) becomes the field's. */
function parsed(field: string, path: string, what: string, parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new ConfigError(field, `${path} is not ${what} (${reason})`);
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
  const message = typeof e.message === 'string' ? e.message : String(err);
  const code = typeof e.code === 'string' && ADVICE[e.code] ? e.code : ERRNO.exec(message)?.[1];
  const why = code ? `${ADVICE[code]} (${code})` : `cannot listen (${message.split('\n')[0]})`;
  return new ConfigError(field, `${address}: ${why}`);
}

/**
 * A gRPC listener that failed to bind, on the field of the listener that failed: the
 * socket path (or its directory) appears in the error (grpc-js's message, a Node error's
 * `address` or `path`); otherwise it was the TCP one.
 */
export function grpcBindError(err: unknown, grpc: ServerConfig['grpc']): ConfigError {
  const { tcp, unix } = grpc;
  const e = err as { message?: unknown; address?: unknown; path?: unknown };
  const unixFailed =
    unix !== undefined &&
    (!tcp ||
      e.address === unix.path ||
      (typeof e.path === 'string' && unix.path.startsWith(e.path)) ||
      String(e.message).includes(unix.path));
  return unixFailed ? bindError(err, 'grpc.unix.path', unix.path) : bindError(err, 'grpc.tcp.address', tcp!.address);
}
