import { boundedCopy } from './bounded-text.js';
import type { RejectReason } from './call-end.js';
import type { NodeMessage } from './messages.js';
import type { NodeInfo } from './stream-status.js';
import { SECRET_TYPE_URL } from './type-urls.js';

export interface RequestLimits {
  /** Most names one stream may subscribe to (an ADS stream carries all of a gateway's). */
  maxNamesPerStream: number;
  /** Longest accepted secret name (characters). */
  maxNameLength: number;
  /** A NACK's error_detail message is cut to this many characters before it is kept or logged. */
  maxErrorDetailLength: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { maxNamesPerStream: 5000, maxNameLength: 512, maxErrorDetailLength: 1024 };

/** A request the stream cannot go on with: the call ends with this reason (the edge picks the code). */
export interface Rejection {
  type: 'reject';
  reason: RejectReason;
  message: string;
}

export function checkTypeUrl(typeUrl: string | undefined, rpc: string): Rejection | undefined {
  // StreamSecrets implies the type; an empty type_url there is tolerated.
  if (!typeUrl && !rpc.includes('Aggregated')) return undefined;
  if (typeUrl === SECRET_TYPE_URL) return undefined;
  return {
    type: 'reject',
    reason: 'type_url',
    message: `type_url "${truncate(typeUrl ?? '', 200)}" is not served by ${rpc}: this server serves only ${SECRET_TYPE_URL}`,
  };
}

export function checkNames(names: Iterable<string>, count: number, limits: RequestLimits): Rejection | undefined {
  if (count > limits.maxNamesPerStream) {
    return {
      type: 'reject',
      reason: 'too_many_names',
      message: `a stream may subscribe to at most ${limits.maxNamesPerStream} names (asked for ${count})`,
    };
  }
  for (const n of names) {
    const bad = checkName(n, limits);
    if (bad) return bad;
  }
  return undefined;
}

export function checkName(name: string, limits: RequestLimits): Rejection | undefined {
  if (name.length > 0 && name.length <= limits.maxNameLength) return undefined;
  return {
    type: 'reject',
    reason: name.length === 0 ? 'bad_name' : 'name_too_long',
    message: `secret names must be 1 to ${limits.maxNameLength} characters long`,
  };
}

/** The caller identity would hold more distinct names than its budget (all its streams together). */
export function tooManyNamesForIdentity(limit: number): Rejection {
  return {
    type: 'reject',
    reason: 'too_many_names_for_identity',
    message: `this caller identity may subscribe to at most ${limit} distinct names across its streams`,
  };
}

/** A NACK's message as kept in status and logs: bounded, never a view of the request. */
export function nackMessage(message: string | undefined, limits: RequestLimits): string {
  return boundedCopy(message ?? '', limits.maxErrorDetailLength);
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
  return boundedCopy(s, n);
}
