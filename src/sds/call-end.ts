/**
 * Why the stream layer ends a call, in its own words. The gRPC edge maps each reason to
 * a status code (transport/grpc-status.ts), so sessions and the driver never speak gRPC.
 */
export type RejectReason = 'type_url' | 'too_many_names' | 'bad_name' | 'name_too_long' | 'too_many_names_for_identity';

export type EndReason =
  | 'ok'
  | RejectReason
  /** FetchSecrets named nothing. */
  | 'no_names'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'internal';

export interface CallEnd {
  readonly reason: EndReason;
  /** For the client (grpc-message): never a key, a token or whether a denied name exists. */
  readonly message: string;
}

export const END_OK: CallEnd = { reason: 'ok', message: '' };

export function isCallEnd(x: unknown): x is CallEnd {
  return typeof x === 'object' && x !== null && 'reason' in x && !(x instanceof Uint8Array);
}
