import type { Logger } from '../observability/logger.js';
import type { Authorizer } from './authorizer.js';
import type { CallerIdentity } from './identity.js';

/**
 * Wraps the policy so that a CA's private key is never served, whatever a rule (a
 * wildcard, an RBAC grant) says: a name known to hold a CA key pair is denied to every
 * caller, exactly like a missing name, and its `-cacert` bundle is what Envoy should ask
 * for. Envoy never needs a CA's key.
 */
export class CaKeyWithholding implements Authorizer {
  private readonly logged = new Set<string>();
  readonly watchGrant?: Authorizer['watchGrant'];

  constructor(
    private readonly inner: Authorizer,
    private readonly isCaKey: (name: string) => boolean,
    private readonly logger: Logger,
  ) {
    const watch = inner.watchGrant?.bind(inner);
    if (watch) {
      // A withheld name is never granted, whatever RBAC comes to say.
      this.watchGrant = (identity, name, onGranted) => (this.isCaKey(name) ? () => undefined : watch(identity, name, onGranted));
    }
  }

  canRead(identity: CallerIdentity, name: string): boolean | Promise<boolean> {
    if (this.isCaKey(name)) {
      if (!this.logged.has(name)) {
        this.logged.add(name);
        this.logger.warn(
          { secret: name, cacert: `${name}-cacert` },
          'a CA private key is never served over SDS (serveCAPrivateKey: true allows it); ask for the -cacert bundle',
        );
      }
      return false;
    }
    return this.inner.canRead(identity, name);
  }
}
