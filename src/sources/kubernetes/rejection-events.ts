import { createHash } from 'node:crypto';
import type { KubeClient } from '../../kubernetes/kube-client.js';
import { KubeApiError } from '../../kubernetes/kube-errors.js';
import type { Logger } from '../../observability/logger.js';
import type { SourceObject } from './desired-secret.js';

export const REJECTED_REASON = 'SecretRejected';
const COMPONENT = 'envoy-sds';
const MAX_MESSAGE = 1000;

export interface Rejection {
  /** The SDS name that was not updated. */
  name: string;
  code: string;
  /** Why, free of key material (the store's and the PKI's errors are). */
  detail: string;
  /** The version still served, if any. */
  servedVersion: string | undefined;
}

/**
 * Warning Events on the Secret or ConfigMap whose content was rejected, so `kubectl
 * describe secret` shows why a rotation did not reach the gateways.
 *
 * The Event's name is a hash of (object uid, resourceVersion, SDS name, code): every
 * replica computes the same one, so the first creates it and the others get
 * AlreadyExists; a re-list does not repeat it either.
 */
export class RejectionEvents {
  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
    private readonly reportingInstance: string,
    private readonly onOutcome: (outcome: 'created' | 'exists' | 'failed') => void = () => {},
  ) {}

  report(source: SourceObject, rejection: Rejection): void {
    // A cluster-scoped object (a ClusterTrustBundle) has no namespace to hold its Event: logged only.
    if (!source.meta.namespace) return;
    this.create(source, rejection).catch((err: unknown) => {
      this.onOutcome('failed');
      this.logger.warn(
        { object: `${source.kind} ${source.meta.namespace}/${source.meta.name}`, secret: rejection.name, err: (err as Error).message },
        'could not record the rejection as a Kubernetes Event',
      );
    });
  }

  private async create(source: SourceObject, r: Rejection): Promise<void> {
    const { meta } = source;
    const id = createHash('sha256').update(`${meta.uid}\n${meta.resourceVersion}\n${r.name}\n${r.code}`).digest('hex').slice(0, 16);
    const served = r.servedVersion ? `still serving version ${r.servedVersion}` : 'nothing served for it yet';
    const message = `${r.name} not updated (${r.code}): ${r.detail}; ${served}`.slice(0, MAX_MESSAGE);
    const now = new Date().toISOString();
    try {
      await this.client.request('POST', `/api/v1/namespaces/${meta.namespace}/events`, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: `${meta.name.slice(0, 200)}.${id}`, namespace: meta.namespace },
          involvedObject: {
            apiVersion: source.apiVersion ?? 'v1',
            kind: source.kind,
            namespace: meta.namespace,
            name: meta.name,
            uid: meta.uid,
            resourceVersion: meta.resourceVersion,
          },
          reason: REJECTED_REASON,
          message,
          type: 'Warning',
          source: { component: COMPONENT },
          reportingComponent: COMPONENT,
          reportingInstance: this.reportingInstance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.onOutcome('created');
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) {
        this.onOutcome('exists');
        return;
      }
      throw err;
    }
  }
}
