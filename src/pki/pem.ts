/**
 * Strict PEM (RFC 7468) parsing and encoding.
 *
 * Accepted: blocks separated by blank lines, LF or CRLF line endings, trailing
 * spaces/tabs on a line, a leading UTF-8 byte order mark, base64 lines of any
 * length. Rejected, with the line number in the message: any other text outside a
 * block (unless `allowTextOutsideBlocks`), anything but base64 inside a block,
 * RFC 1421 headers (encrypted legacy keys), blank lines inside a block, BEGIN/END
 * label mismatches, a missing END line, bad or non-canonical base64.
 *
 * Messages never quote the input: a block may hold a private key, and its text
 * must not leak into logs through an error.
 */
import { PkiError } from './errors.js';

export interface PemBlock {
  label: string;
  der: Buffer;
}

export interface ParsePemOptions {
  /**
   * Ignore non-blank text outside blocks (RFC 7468 "explanatory text", as in
   * curl's cacert.pem). Text inside blocks is always checked strictly.
   */
  allowTextOutsideBlocks?: boolean;
}

/** RFC 7468 label: printable ASCII without '-' at the ends, single '-' or ' ' inside. */
const LABEL = /^[\x21-\x2C\x2E-\x7E](?:[- ]?[\x21-\x2C\x2E-\x7E])*$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const BEGIN_PREFIX = '-----BEGIN ';
const END_PREFIX = '-----END ';
const DASHES = '-----';

/**
 * A label as it may appear in a message. Labels come from the input; one that
 * does not look like an ordinary label is not echoed.
 */
export function describeLabel(label: string): string {
  return /^[A-Z0-9][A-Z0-9 ]{0,39}$/.test(label) ? `'${label}'` : 'an unrecognized label';
}

function boundaryLabel(line: string, prefix: string): string | undefined {
  if (!line.startsWith(prefix) || !line.endsWith(DASHES) || line.length < prefix.length + DASHES.length) {
    return undefined;
  }
  return line.slice(prefix.length, line.length - DASHES.length);
}

interface OpenBlock {
  label: string;
  line: number;
  base64: string[];
  padded: boolean;
}

/** Decodes every PEM block of `text`, in order. Throws PkiError (PEM_INVALID, PEM_EMPTY). */
export function parsePemBlocks(text: string, options: ParsePemOptions = {}): PemBlock[] {
  const allowText = options.allowTextOutsideBlocks === true;
  const input = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lines = input.split('\n');
  const blocks: PemBlock[] = [];
  let open: OpenBlock | undefined;

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = (lines[i] ?? '').replace(/\r$/, '').replace(/[ \t]+$/, '');

    if (open === undefined) {
      if (line === '') continue;
      if (line.startsWith(BEGIN_PREFIX.trimEnd())) {
        const label = boundaryLabel(line, BEGIN_PREFIX);
        if (label === undefined || !LABEL.test(label)) {
          throw new PkiError('PEM_INVALID', `line ${n}: malformed PEM BEGIN line`);
        }
        open = { label, line: n, base64: [], padded: false };
        continue;
      }
      if (line.startsWith(END_PREFIX.trimEnd())) {
        throw new PkiError('PEM_INVALID', `line ${n}: PEM END line without a matching BEGIN line`);
      }
      if (allowText) continue;
      if (line.trimStart().startsWith(DASHES)) {
        throw new PkiError('PEM_INVALID', `line ${n}: PEM boundary lines must start at the beginning of the line`);
      }
      throw new PkiError('PEM_INVALID', `line ${n}: unexpected text outside a PEM block (only PEM blocks and blank lines are allowed)`);
    }

    const where = `PEM block ${blocks.length + 1} (${describeLabel(open.label)}, line ${open.line})`;
    if (line.startsWith(END_PREFIX.trimEnd())) {
      const label = boundaryLabel(line, END_PREFIX);
      if (label === undefined) throw new PkiError('PEM_INVALID', `line ${n}: malformed PEM END line`);
      if (label !== open.label) {
        throw new PkiError('PEM_INVALID', `line ${n}: END label ${describeLabel(label)} does not match the BEGIN label of ${where}`);
      }
      blocks.push({ label: open.label, der: decodeBase64(open.base64.join(''), where) });
      open = undefined;
      continue;
    }
    if (line.startsWith(BEGIN_PREFIX.trimEnd())) {
      throw new PkiError('PEM_INVALID', `line ${n}: BEGIN line inside ${where}; is its END line missing?`);
    }
    if (line === '') {
      throw new PkiError('PEM_INVALID', `line ${n}: blank line inside ${where}`);
    }
    if (line.includes(':')) {
      throw new PkiError(
        'PEM_INVALID',
        `line ${n}: header line inside ${where}; PEM headers (such as those of legacy encrypted keys) are not supported`,
      );
    }
    if (!BASE64_LINE.test(line)) {
      throw new PkiError('PEM_INVALID', `line ${n}: invalid base64 character inside ${where}`);
    }
    if (open.padded) {
      throw new PkiError('PEM_INVALID', `line ${n}: base64 data after padding inside ${where}`);
    }
    if (line.endsWith('=')) open.padded = true;
    open.base64.push(line);
  }

  if (open !== undefined) {
    throw new PkiError(
      'PEM_INVALID',
      `PEM block ${blocks.length + 1} (${describeLabel(open.label)}, line ${open.line}) has no END line; the data may be truncated`,
    );
  }
  if (blocks.length === 0) {
    throw new PkiError('PEM_EMPTY', input.trim() === '' ? 'input is empty' : 'no PEM block found');
  }
  return blocks;
}

function decodeBase64(b64: string, where: string): Buffer {
  if (b64.length === 0) throw new PkiError('PEM_INVALID', `${where} has no content`);
  if (b64.length % 4 !== 0) {
    throw new PkiError('PEM_INVALID', `${where}: base64 length is not a multiple of 4; the data may be truncated`);
  }
  const der = Buffer.from(b64, 'base64');
  // Node's decoder is lenient; re-encoding catches misplaced padding and non-zero pad bits.
  if (der.length === 0 || der.toString('base64') !== b64) {
    throw new PkiError('PEM_INVALID', `${where}: malformed base64`);
  }
  return der;
}

/** Encodes DER as one PEM block: 64-character lines, LF endings, trailing newline. */
export function toPem(label: string, der: Uint8Array): string {
  if (!LABEL.test(label)) throw new PkiError('INVALID_ARGUMENT', 'invalid PEM label');
  if (der.length === 0) throw new PkiError('INVALID_ARGUMENT', 'cannot encode empty DER as PEM');
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/**
 * PEM input as text. Kubernetes Secret values arrive as bytes; they must be UTF-8
 * (PEM is ASCII). Binary DER is recognised and named in the error.
 */
export function pemText(input: string | Uint8Array): string {
  if (typeof input === 'string') return input;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    throw new PkiError(
      'PEM_INVALID',
      input[0] === 0x30 ? 'input looks like binary DER; PEM text is expected' : 'input is not valid UTF-8 text',
    );
  }
}

export function byteLength(input: string | Uint8Array): number {
  return typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
}
