/**
 * Errors of the Kubernetes API client, with stable codes. Messages come from the API
 * server's Status or the socket error: never from a request body, so never a token.
 */
export class KubeApiError extends Error {
  readonly code = 'KUBE_API_ERROR';
  constructor(
    /** HTTP status, or the Status code of a watch ERROR event (410 = Gone). */
    readonly status: number,
    /** Status.reason, e.g. Expired, Forbidden, NotFound, AlreadyExists. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }

  /** The resourceVersion asked for is older than the server keeps: list again. */
  get gone(): boolean {
    return this.status === 410 || this.reason === 'Expired' || this.reason === 'Gone';
  }
}

/** No answer from the API server (connection refused or reset, timeout, TLS failure). */
export class KubeUnreachableError extends Error {
  readonly code = 'KUBE_UNREACHABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeUnreachableError';
  }
}

/** A Status object as the API server sends it in error bodies and watch ERROR events. */
export function errorFromStatus(httpStatus: number, body: unknown): KubeApiError {
  const s = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const code = typeof s['code'] === 'number' ? s['code'] : httpStatus;
  const reason = typeof s['reason'] === 'string' ? s['reason'] : '';
  const message = typeof s['message'] === 'string' ? s['message'] : `HTTP ${httpStatus}`;
  return new KubeApiError(code, reason, message);
}
