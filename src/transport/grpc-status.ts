import { status as Status } from '@grpc/grpc-js';
import type { CallEnd, EndReason } from '../sds/call-end.js';

/** The gRPC status code for each reason the stream layer ends a call. */
const CODES: Record<EndReason, Status> = {
  ok: Status.OK,
  type_url: Status.UNIMPLEMENTED,
  too_many_names: Status.RESOURCE_EXHAUSTED,
  too_many_names_for_identity: Status.RESOURCE_EXHAUSTED,
  bad_name: Status.INVALID_ARGUMENT,
  name_too_long: Status.INVALID_ARGUMENT,
  no_names: Status.INVALID_ARGUMENT,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  not_found: Status.NOT_FOUND,
  internal: Status.INTERNAL,
};

export function grpcStatusOf(end: CallEnd): Status {
  return CODES[end.reason];
}
