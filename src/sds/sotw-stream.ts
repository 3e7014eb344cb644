import type { StoredSecret } from '../store/secret-material.js';
import type { DiscoveryRequest } from './messages.js';
import { SotwSession } from './sotw-session.js';
import { StreamDriver } from './stream-driver.js';
import type { StreamStatus } from './stream-status.js';

/** StreamSecrets, and StreamAggregatedResources for the Secret type. */
export class SotwStream extends StreamDriver<DiscoveryRequest, SotwSession> {
  protected createSession(status: StreamStatus): SotwSession {
    return new SotwSession(status, this.rpc, this.deps.limits, this.deps.identityNames.budgetFor(status.identity));
  }

  protected async onRequest(req: DiscoveryRequest): Promise<void> {
    const session = this.session!;
    const verdict = session.onRequest(req);
    const { metrics } = this.deps;
    switch (verdict.type) {
      case 'reject':
        metrics.badRequests.inc({ reason: verdict.reason });
        this.fail(verdict.code, verdict.message);
        return;
      case 'stale':
        // Stale nonce: ignore; the client sends a newer request.
        metrics.staleNonces.inc();
        return;
      case 'accept':
        break;
    }
    if (verdict.ack) metrics.acks.inc({ protocol: 'sotw' });
    if (verdict.nack) {
      // NACK: count, log, expose; wait for a changed secret before pushing again.
      metrics.nacks.inc({ protocol: 'sotw' });
      this.deps.clientLog.warn(
        'nack',
        this.log,
        { node: session.status.node?.id, version: verdict.nack.version, message: verdict.nack.message },
        'client rejected secret (NACK)',
      );
    }
    this.unsubscribe(verdict.removed);
    const toSend = await this.subscribe(verdict.added);
    this.send(toSend);
  }

  protected encodePush(secrets: StoredSecret[]): Buffer {
    return this.session!.buildResponse(secrets);
  }

  protected needsRemoval(): boolean {
    return false; // state of the world has no removal for secrets
  }
}
