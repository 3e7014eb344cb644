// The one error type of the RFC 2136 client. `code` is stable and meant for programs;
// `message` is for people. Neither ever contains the TSIG secret: messages name the key,
// the zone and the server, nothing more.

export type DnsUpdateErrorCode =
  // Our side: bad arguments, before anything is sent.
  | 'DNS_INVALID_REQUEST'
  // Transport.
  | 'DNS_TIMEOUT'
  | 'DNS_CONNECTION_FAILED'
  | 'DNS_MALFORMED_RESPONSE'
  // RCODEs of the response (RFC 1035, RFC 2136 section 2.2).
  | 'DNS_UPDATE_FORMERR'
  | 'DNS_UPDATE_SERVFAIL'
  | 'DNS_UPDATE_NXDOMAIN'
  | 'DNS_UPDATE_NOTIMP'
  | 'DNS_UPDATE_REFUSED'
  | 'DNS_UPDATE_YXDOMAIN'
  | 'DNS_UPDATE_YXRRSET'
  | 'DNS_UPDATE_NXRRSET'
  | 'DNS_UPDATE_NOTAUTH'
  | 'DNS_UPDATE_NOTZONE'
  | 'DNS_UPDATE_FAILED'
  // TSIG errors the server reported (RFC 8945 section 5.2).
  | 'DNS_TSIG_BADSIG'
  | 'DNS_TSIG_BADKEY'
  | 'DNS_TSIG_BADTIME'
  | 'DNS_TSIG_BADALG'
  | 'DNS_TSIG_ERROR'
  // TSIG problems we found in the server's response (RFC 8945 section 5.3).
  | 'DNS_TSIG_RESPONSE_UNSIGNED'
  | 'DNS_TSIG_RESPONSE_BADSIG'
  | 'DNS_TSIG_RESPONSE_BADTIME';

export interface DnsUpdateErrorDetails {
  /** RCODE name of the response, when there was one (e.g. `NOTAUTH`). */
  rcode?: string;
  /** TSIG error name from the response's TSIG record, when not zero (e.g. `BADSIG`). */
  tsigError?: string;
  cause?: unknown;
}

export class DnsUpdateError extends Error {
  readonly code: DnsUpdateErrorCode;
  readonly rcode: string | undefined;
  readonly tsigError: string | undefined;

  constructor(code: DnsUpdateErrorCode, message: string, details: DnsUpdateErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DnsUpdateError';
    this.code = code;
    this.rcode = details.rcode;
    this.tsigError = details.tsigError;
  }
}
