import { authenticationFailureMessage } from '../authz/authentication-error.js';
import type { PeerInfo } from '../authz/authorizer.js';
import { describeIdentity, type CallerIdentity } from '../authz/identity.js';
import type { StoredSecret } from '../store/secret-material.js';
import type { CallEnd } from './call-end.js';
import { recordDenied } from './denials.js';
import type { DiscoveryRequest } from './messages.js';
import { checkNames, checkTypeUrl } from './request-checks.js';
import { sotwResponse } from './responses.js';
import type { StreamDeps } from './stream-driver.js';

/**
 * FetchSecrets: one request, the current secrets in one response, or why not. A denied
 * name fails the whole call (permission_denied) before existence is looked at, so the
 * answer never tells whether a secret exists.
 */
export async function fetchSecrets(req: DiscoveryRequest, peer: PeerInfo, deps: StreamDeps): Promise<Buffer | CallEnd> {
  const typeErr = checkTypeUrl(req.type_url, 'FetchSecrets');
  if (typeErr) return typeErr;
  const names = [...new Set(req.resource_names ?? [])];
  const bad = checkNames(names, names.length, deps.limits);
  if (bad) return bad;
  if (names.length === 0) return { reason: 'no_names', message: 'resource_names must name at least one secret' };

  let identity: CallerIdentity;
  try {
    identity = await deps.authenticator.authenticate(peer);
  } catch (err) {
    return { reason: 'unauthenticated', message: authenticationFailureMessage(err) };
  }
  const label = describeIdentity(identity);
  for (const name of names) {
    if (!(await deps.authorizer.canRead(identity, name))) {
      recordDenied(deps, deps.logger.child({ rpc: 'FetchSecrets' }), label, [name]);
      return { reason: 'permission_denied', message: `caller may not read "${name}"` };
    }
  }
  const secrets: StoredSecret[] = [];
  for (const name of names) {
    const s = deps.store.get(name);
    if (!s) return { reason: 'not_found', message: `secret "${name}" does not exist (yet)` };
    secrets.push(s);
  }
  deps.metrics.pushes.inc({ protocol: 'fetch' }, secrets.length);
  deps.audit?.delivered(label, secrets);
  return Buffer.concat(sotwResponse(secrets, '1'));
}
