/**
 * Errors of the PKI toolkit. Every failure carries a stable `code` that callers
 * (the store's door, the CLI, the issuance engine) can switch on; the message is
 * for people.
 *
 * Contract: a message never contains private key material, not even a fragment.
 * Messages name positions (line numbers, certificate indexes), PEM labels and
 * certificate subjects, never the text that was being parsed. Errors raised
 * while decoding keys carry no `cause` for the same reason.
 */
export type PkiErrorCode =
  /** Text is not well-formed PEM (garbage, bad base64, BEGIN/END mismatch...). */
  | 'PEM_INVALID'
  /** No PEM block (or no block of the expected kind) was found. */
  | 'PEM_EMPTY'
  /** A private key could not be decoded. */
  | 'KEY_INVALID'
  /** A private key does not belong to the certificate it is paired with. */
  | 'KEY_MISMATCH'
  /** A chain is not leaf-first or its certificates do not link by name. */
  | 'CHAIN_ORDER'
  /** Names link but a certificate's signature does not verify with the next one's key. */
  | 'CHAIN_SIGNATURE'
  /** A certificate that must be a CA is not one. */
  | 'NOT_CA'
  /** Input exceeds the configured size cap. */
  | 'TOO_LARGE'
  /** A certificate could not be decoded. */
  | 'CERT_INVALID'
  /** A certificate signing request could not be decoded or its signature is wrong. */
  | 'CSR_INVALID'
  /** A key type, curve or size that the toolkit (or Envoy) does not support. */
  | 'UNSUPPORTED_KEY'
  /** A parameter given by the caller is invalid (bad IP address, unknown usage...). */
  | 'INVALID_ARGUMENT'
  /** A CRL does not decode, or no CA of its bundle signed it (Envoy refuses either). */
  | 'CRL_INVALID'
  /** An OCSP staple does not decode, is not a successful basic response, or is for another certificate. */
  | 'OCSP_INVALID';

export class PkiError extends Error {
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkiError';
    this.code = code;
  }
}

export function isPkiError(err: unknown, code?: PkiErrorCode): err is PkiError {
  return err instanceof PkiError && (code === undefined || err.code === code);
}
