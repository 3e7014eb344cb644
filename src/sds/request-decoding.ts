import type { DeltaDiscoveryRequest, DiscoveryRequest, NodeMessage, StatusMessage } from './messages.js';

/**
 * Decoders for the two request messages, reading only the fields the sessions use and
 * skipping the rest by wire type (Envoy's Node carries metadata, extensions and client
 * features that a generic decoder would turn into hundreds of objects per stream). Field
 * numbers are those of envoy/service/discovery/v3/discovery.proto; test/proto compares
 * the results with the upstream protos. Malformed input throws a plain Error.
 *
 * Protobuf rules kept: fields in any order; the last value of a singular field wins; an
 * embedded message given twice is merged; a field with an unexpected wire type is
 * skipped as unknown; strings are copied out (no view keeps the request alive).
 */

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

class Reader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint's low 32 bits (enough for tags, lengths and int32 values). */
  varint(): number {
    let n = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      if (shift < 32) n |= (b & 0x7f) << shift;
      if (b < 0x80) return n;
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** The bounds of a length-delimited field's content. */
  span(): number {
    const len = this.varint() >>> 0;
    const start = this.pos;
    if (len > this.end - start) throw new Error('truncated field');
    this.pos = start + len;
    return start;
  }

  string(): string {
    const start = this.span();
    return this.buf.toString('utf8', start, this.pos);
  }

  /** Reads a tag; field 0 is never valid. */
  tag(): number {
    const tag = this.varint() >>> 0;
    if (tag >>> 3 === 0) throw new Error('invalid field number 0');
    return tag;
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === FIXED64) this.advance(8);
    else if (wire === LEN) this.span();
    else if (wire === FIXED32) this.advance(4);
    else throw new Error(`unsupported wire type ${wire}`);
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new Error('truncated field');
    this.pos += n;
  }

  /** A reader over the embedded message that follows (the outer reader moves past it). */
  sub(): Reader {
    const start = this.span();
    return new Reader(this.buf, start, this.pos);
  }
}

function readNode(r: Reader, into: NodeMessage | null | undefined): NodeMessage {
  const node: NodeMessage = into ?? { id: '', cluster: '', user_agent_name: '', user_agent_version: '' };
  while (!r.done) {
    const tag = r.tag();
    const wire = tag & 7;
    if (wire !== LEN) {
      r.skip(wire);
      continue;
    }
    switch (tag >>> 3) {
      case 1:
        node.id = r.string();
        break;
      case 2:
        node.cluster = r.string();
        break;
      case 6:
        node.user_agent_name = r.string();
        break;
      case 7:
        node.user_agent_version = r.string();
        break;
      default:
        r.skip(wire);
    }
  }
  return node;
}

function readStatus(r: Reader, into: StatusMessage | null | undefined): StatusMessage {
  const status: StatusMessage = into ?? { code: 0, message: '' };
  while (!r.done) {
    const tag = r.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === VARINT) status.code = r.varint() | 0;
    else if (field === 2 && wire === LEN) status.message = r.string();
    else r.skip(wire);
  }
  return status;
}

/** envoy.service.discovery.v3.DiscoveryRequest. */
export function decodeDiscoveryRequest(bytes: Buffer): DiscoveryRequest {
  const req = {
    version_info: '',
    node: null as NodeMessage | null,
    resource_names: [] as string[],
    type_url: '',
    response_nonce: '',
    error_detail: null as StatusMessage | null,
  };
  const r = new Reader(bytes, 0, bytes.length);
  while (!r.done) {
    const tag = r.tag();
    const wire = tag & 7;
    if (wire !== LEN) {
      r.skip(wire);
      continue;
    }
    switch (tag >>> 3) {
      case 1:
        req.version_info = r.string();
        break;
      case 2:
        req.node = readNode(r.sub(), req.node);
        break;
      case 3:
        req.resource_names.push(r.string());
        break;
      case 4:
        req.type_url = r.string();
        break;
      case 5:
        req.response_nonce = r.string();
        break;
      case 6:
        req.error_detail = readStatus(r.sub(), req.error_detail);
        break;
      default:
        r.skip(wire);
    }
  }
  return req;
}

/** envoy.service.discovery.v3.DeltaDiscoveryRequest. */
export function decodeDeltaDiscoveryRequest(bytes: Buffer): DeltaDiscoveryRequest {
  const req = {
    node: null as NodeMessage | null,
    type_url: '',
    resource_names_subscribe: [] as string[],
    resource_names_unsubscribe: [] as string[],
    // No prototype: a client's key such as "__proto__" is only a name.
    initial_resource_versions: Object.create(null) as Record<string, string>,
    response_nonce: '',
    error_detail: null as StatusMessage | null,
  };
  const r = new Reader(bytes, 0, bytes.length);
  while (!r.done) {
    const tag = r.tag();
    const wire = tag & 7;
    if (wire !== LEN) {
      r.skip(wire);
      continue;
    }
    switch (tag >>> 3) {
      case 1:
        req.node = readNode(r.sub(), req.node);
        break;
      case 2:
        req.type_url = r.string();
        break;
      case 3:
        req.resource_names_subscribe.push(r.string());
        break;
      case 4:
        req.resource_names_unsubscribe.push(r.string());
        break;
      case 5: {
        // map<string, string> entry {key = 1; value = 2}; a missing part is ''.
        const e = r.sub();
        let key = '';
        let value = '';
        while (!e.done) {
          const t = e.tag();
          if (t === ((1 << 3) | LEN)) key = e.string();
          else if (t === ((2 << 3) | LEN)) value = e.string();
          else e.skip(t & 7);
        }
        req.initial_resource_versions[key] = value;
        break;
      }
      case 6:
        req.response_nonce = r.string();
        break;
      case 7:
        req.error_detail = readStatus(r.sub(), req.error_detail);
        break;
      default:
        r.skip(wire);
    }
  }
  return req;
}
