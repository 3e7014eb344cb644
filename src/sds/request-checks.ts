import { status } from '@grpc/grpc-js';
import type { NodeMessage } from './messages.js';
import type { NodeInfo } from './stream-status.js';
import { SECRET_TYPE_URL } from './type-urls.js';

export interface RequestLimits {
  /** Most names one stream may subscribe to (an ADS stream carries all of a gateway's). */
  maxNamesPerStream: number;
  /** Longest accepted secret name. */
  maxNameLength: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { maxNamesPerStream: 5000, maxNameLength: 1024 };

/** A request the stream cannot go on with: closes it with this status. */
export interface Rejection {
  type: 'reject';
  code: status;
  reason: 'type_url' | 'too_many_names' | 'bad_name';
  message: string;
}

export function checkTypeUrl(typeUrl: string | undefined, rpc: string): Rejection | undefined {
  // StreamSecrets implies the type; an empty type_url there is tolerated.
  if (!typeUrl && !rpc.includes('Aggregated')) return undefined;
  if (typeUrl === SECRET_TYPE_URL) return undefined;
  return {
    type: 'reject',
    code: status.UNIMPLEMENTED,
    reason: 'type_url',
    message: `type_url "${truncate(typeUrl ?? '', 200)}" is not served by ${rpc}: this server serves only ${SECRET_TYPE_URL}`,
  };
}

export function checkNames(names: Iterable<string>, count: number, limits: RequestLimits): Rejection | undefined {
  if (count > limits.maxNamesPerStream) {
    return {
      type: 'reject',
      code: status.RESOURCE_EXHAUSTED,
      reason: 'too_many_names',
      message: `a stream may subscribe to at most ${limits.maxNamesPerStream} names (asked for ${count})`,
    };
  }
  for (const n of names) {
    if (n.length === 0 || n.length > limits.maxNameLength) {
      return {
        type: 'reject',
        code: status.INVALID_ARGUMENT,
        reason: 'bad_name',
        message: `secret names must be 1 to ${limits.maxNameLength} characters long`,
      };
    }
  }
  return undefined;
}

export function nodeInfo(node: NodeMessage | null | undefined): NodeInfo | undefined {
  if (!node || (!node.id && !node.cluster)) return undefined;
  return {
    id: truncate(node.id ?? '', 256),
    cluster: truncate(node.cluster ?? '', 256),
    userAgent: truncate([node.user_agent_name, node.user_agent_version].filter(Boolean).join('/'), 128),
  };
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
