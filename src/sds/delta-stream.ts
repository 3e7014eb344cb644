import type { StoredSecret } from '../store/secret-material.js';
import { DeltaSession } from './delta-session.js';
import type { DeltaDiscoveryRequest } from './messages.js';
import { StreamDriver } from './stream-driver.js';
import type { StreamStatus } from './stream-status.js';

/**
 * DeltaSecrets, and DeltaAggregatedResources for the Secret type.
 *
 * removed_resources is sent only when a secret the stream was sent is deleted from the
 * store, never for a name that merely does not exist yet: current Envoy would end
 * warming with no certificate, and older Envoys NACK it.
 */
export class DeltaStream extends StreamDriver<DeltaDiscoveryRequest, DeltaSession> {
  protected createSession(status: StreamStatus): DeltaSession {
    return new DeltaSession(status, this.rpc, this.deps.limits, this.deps.identityNames.budgetFor(status.identity));
  }

  protected async onRequest(req: DeltaDiscoveryRequest): Promise<void> {
    const session = this.session!;
    const verdict = session.onRequest(req);
    const { metrics } = this.deps;
    if (verdict.type === 'reject') {
      metrics.badRequests.inc({ reason: verdict.reason });
      this.fail(verdict.code, verdict.message);
      return;
    }
    if (verdict.stale) metrics.staleNonces.inc();
    if (verdict.ack) metrics.acks.inc({ protocol: 'delta' });
    if (verdict.nack) {
      metrics.nacks.inc({ protocol: 'delta' });
      this.deps.clientLog.warn(
        'nack',
        this.log,
        { node: session.status.node?.id, message: verdict.nack.message },
        'client rejected secret (NACK)',
      );
    }
    this.unsubscribe(verdict.removed);
    const names = [...verdict.added, ...verdict.skipIfCurrent.keys()];
    // subscribe() sends only what needsPush(): for names the client reported holding at
    // the current version, nothing; for the rest, the current version.
    const toSend = await this.subscribe(names);
    this.send(toSend);
  }

  protected encodePush(secrets: StoredSecret[], removed: string[]): Buffer {
    return this.session!.buildResponse(secrets, removed);
  }

  protected needsRemoval(name: string): boolean {
    return this.session!.needsRemoval(name);
  }
}
