import { authenticationFailureMessage } from '../authz/authentication-error.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { PeerInfo } from '../authz/authorizer.js';
import { describeIdentity } from '../authz/identity.js';
import type { StoredSecret } from '../store/secret-material.js';
import { logDenied } from './denial-log.js';
import type { DiscoveryRequest } from './messages.js';
import { checkNames, checkTypeUrl } from './request-checks.js';
import { SotwSession } from './sotw-session.js';
import type { StreamDeps } from './stream-driver.js';
import { StreamStatus } from './stream-status.js';

export class FetchError extends Error {
  constructor(
    readonly code: grpcStatus,
    message: string,
  ) {
    super(message);
  }
}

/**
 * FetchSecrets: one request, the current secrets in one response. A denied name fails
 * the whole call with PERMISSION_DENIED before existence is looked at, so the answer
 * never tells whether a secret exists.
 */
export async function fetchSecrets(req: DiscoveryRequest, peer: PeerInfo, deps: StreamDeps): Promise<Buffer> {
  const typeErr = checkTypeUrl(req.type_url, 'FetchSecrets');
  if (typeErr) throw new FetchError(typeErr.code, typeErr.message);
  const names = [...new Set(req.resource_names ?? [])];
  const bad = checkNames(names, names.length, deps.limits);
  if (bad) throw new FetchError(bad.code, bad.message);
  if (names.length === 0) throw new FetchError(grpcStatus.INVALID_ARGUMENT, 'resource_names must name at least one secret');

  let identity;
  try {
    identity = await deps.authenticator.authenticate(peer);
  } catch (err) {
    throw new FetchError(grpcStatus.UNAUTHENTICATED, authenticationFailureMessage(err));
  }
  for (const name of names) {
    if (!(await deps.authorizer.canRead(identity, name))) {
      deps.metrics.denied.inc();
      logDenied(deps.clientLog, deps.logger.child({ rpc: 'FetchSecrets' }), describeIdentity(identity), [name]);
      throw new FetchError(grpcStatus.PERMISSION_DENIED, `caller may not read "${name}"`);
    }
  }
  const secrets: StoredSecret[] = [];
  for (const name of names) {
    const s = deps.store.get(name);
    if (!s) throw new FetchError(grpcStatus.NOT_FOUND, `secret "${name}" does not exist (yet)`);
    secrets.push(s);
  }
  deps.metrics.pushes.inc({ protocol: 'fetch' }, secrets.length);
  deps.audit?.delivered(describeIdentity(identity), secrets);
  const session = new SotwSession(new StreamStatus(0, 'sotw', identity), 'FetchSecrets', deps.limits);
  return session.buildResponse(secrets);
}
