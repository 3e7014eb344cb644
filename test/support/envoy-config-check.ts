// A strict checker for Envoy configuration written as JSON/YAML, against the upstream API.
//
// `checkEnvoyJson(typeName, obj)` walks a plain object (what `YAML.parse` or `JSON.parse`
// returns, or what our own code builds before printing) the way Envoy reads it: proto3
// JSON with the proto field names (`stat_prefix`) or their JSON names (`statPrefix`), then
// the protoc-gen-validate rules Envoy applies to every decoded message. protobufjs's
// `Type.verify()` is not enough: it ignores unknown fields and cannot look inside `Any`.
//
// Covered:
// - unknown fields (also a field given twice, once by each name), wrong JSON types for
//   every scalar kind (64-bit integers as numbers or strings, 32-bit ranges, bytes as
//   base64), enums by name (or number), repeated vs single values, maps (key syntax and
//   values), two members of one oneof set, `null` as "unset";
// - well-known types: Any by `@type` (prefix `type.googleapis.com/`, recursing into the
//   named type, `value` for well-known inner types, xds/udpa TypedStruct recursing by its
//   `type_url`), Duration ("5s", "0.25s"), Timestamp, FieldMask, Struct/Value/ListValue,
//   Empty, and the wrappers as plain JSON values (UInt32Value as a number, BoolValue as a
//   boolean);
// - PGV rules: `message.required`, required oneofs, string (min/max_len in code points,
//   min/max_bytes, len, prefix/suffix/contains, in/not_in, const, pattern,
//   well_known_regex for HTTP header names/values, ip/hostname/address/uri, ignore_empty),
//   every numeric kind (const, lt, lte, gt, gte, in, not_in), bool.const, bytes lengths,
//   enum (defined_only, in, not_in, const), repeated (min/max_items, unique, items),
//   map (min/max_pairs, keys, values), duration and any rules; scalar rules are applied to
//   absent fields too (their proto3 default), as PGV does;
// - fields and enum values marked `deprecated` or `disallowed_by_default`, and fields the
//   API marks `[#not-implemented-hide:]` (Envoy ignores them).
//
// Problems are strings `<path>: <what>`, the path written with proto field names, list
// indexes and map keys: `static_resources.listeners[0].filter_chains[0].transport_socket.
// typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name: ...`.
//
// `checkBootstrapConsistency(bootstrap)` checks what the types cannot: references between
// parts of a Bootstrap (see its comment). `sdsSecretNames(bootstrap)` lists the SDS secret
// references of a Bootstrap, for tests that play Envoy.

import { isIP } from 'node:net';
import protobuf from 'protobufjs';
import type { Enum, Field, Type } from 'protobufjs';
import { lookupUpstreamType, upstreamRoot } from './envoy-protos.js';

export interface CheckOptions {
  /** Accept fields and enum values marked `deprecated` (default: report them). */
  allowDeprecated?: boolean;
}

/** Type problems of `obj` read as the message `typeName` (e.g. `envoy.config.bootstrap.v3.Bootstrap`). */
export function checkEnvoyJson(typeName: string, obj: unknown, options: CheckOptions = {}): string[] {
  return analyze(typeName, obj, options).problems;
}

// ---------------------------------------------------------------------------------------
// The walk: checks, and at the same time builds a canonical copy (proto field names, no
// nulls, enums by name) plus an index of every message met, by type, for the consistency
// checks below.

type Json = unknown;
type JsonObject = Record<string, unknown>;
type Rules = Record<string, unknown>;

interface Visit {
  path: string;
  value: JsonObject;
}

interface Walk {
  problems: string[];
  options: CheckOptions;
  index: Map<string, Visit[]>;
}

interface Analysis {
  problems: string[];
  canonical: JsonObject;
  index: Map<string, Visit[]>;
}

function analyze(typeName: string, obj: unknown, options: CheckOptions): Analysis {
  const type = lookupUpstreamType(typeName);
  const w: Walk = { problems: [], options, index: new Map() };
  const canonical = walkMessage(type, obj, '', w, undefined);
  return { problems: w.problems, canonical: isObject(canonical) ? canonical : {}, index: w.index };
}

function report(w: Walk, path: string, what: string): void {
  w.problems.push(`${path === '' ? '(root)' : path}: ${what}`);
}

const join = (path: string, name: string): string => (path === '' ? name : `${path}.${name}`);

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `the ${typeof v} ${String(v)}`;
}

const fullName = (t: Type | Enum): string => t.fullName.replace(/^\./, '');

// ---- field lookup ---------------------------------------------------------------------

const fieldIndexCache = new WeakMap<Type, Map<string, Field>>();

function jsonName(field: Field): string {
  const explicit: unknown = field.options?.['json_name'];
  if (typeof explicit === 'string') return explicit;
  return field.name.replace(/_+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function fieldIndex(type: Type): Map<string, Field> {
  let idx = fieldIndexCache.get(type);
  if (idx === undefined) {
    idx = new Map();
    for (const f of type.fieldsArray) {
      idx.set(f.name, f);
      idx.set(jsonName(f), f);
    }
    fieldIndexCache.set(type, idx);
  }
  return idx;
}

const rulesCache = new WeakMap<Field, Rules | null>();

function deepMerge(into: Rules, from: Rules): void {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (isObject(cur) && isObject(v)) deepMerge(cur, v);
    else into[k] = isObject(v) ? structuredClone(v) : v;
  }
}

/** The merged `(validate.rules)` of a field, or undefined. */
function fieldRules(field: Field): Rules | undefined {
  let r = rulesCache.get(field);
  if (r === undefined) {
    r = null;
    const parsed: unknown = field.parsedOptions;
    if (Array.isArray(parsed)) {
      for (const opt of parsed) {
        if (isObject(opt) && isObject(opt['(validate.rules)'])) {
          r ??= {};
          deepMerge(r, opt['(validate.rules)']);
        }
      }
    }
    rulesCache.set(field, r);
  }
  return r ?? undefined;
}

const sub = (rules: Rules | undefined, key: string): Rules | undefined => {
  const v = rules?.[key];
  return isObject(v) ? v : undefined;
};

function asList(v: unknown): unknown[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function markProblems(field: Field, path: string, w: Walk): void {
  const opts = field.options ?? {};
  if (opts['deprecated'] === true && w.options.allowDeprecated !== true) {
    report(w, path, `deprecated field ${field.name} of ${fullName(field.parent as Type)}`);
  }
  if (opts['(envoy.annotations.disallowed_by_default)'] === true) {
    report(w, path, `field ${field.name} is disallowed by default in Envoy`);
  }
  if ((field.comment ?? '').includes('[#not-implemented-hide:]')) {
    report(w, path, `field ${field.name} is marked [#not-implemented-hide:] (Envoy does not implement it)`);
  }
}

// ---- messages -------------------------------------------------------------------------

const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

const SPECIAL_JSON = new Set([
  'google.protobuf.Any',
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.FieldMask',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  ...Object.keys(WRAPPERS),
]);

const TYPED_STRUCTS = new Set(['xds.type.v3.TypedStruct', 'udpa.type.v1.TypedStruct']);

/** Walks `value` as message `type`; `rules` are the PGV rules of the field holding it. */
function walkMessage(type: Type, value: Json, path: string, w: Walk, rules: Rules | undefined): Json {
  const name = fullName(type);
  const wrapped = WRAPPERS[name];
  if (wrapped !== undefined) return walkScalar(wrapped, value, path, w, rules);
  switch (name) {
    case 'google.protobuf.Any':
      return walkAny(value, path, w, rules);
    case 'google.protobuf.Duration':
      return walkDuration(value, path, w, rules);
    case 'google.protobuf.Timestamp':
      if (typeof value !== 'string' || !TIMESTAMP.test(value)) {
        report(w, path, `expected an RFC 3339 timestamp string, got ${describe(value)}`);
      }
      return value;
    case 'google.protobuf.FieldMask':
      if (typeof value !== 'string') report(w, path, `expected a field mask string, got ${describe(value)}`);
      return value;
    case 'google.protobuf.Struct':
      if (!isObject(value)) report(w, path, `expected an object (google.protobuf.Struct), got ${describe(value)}`);
      else checkPlainJson(value, path, w);
      return value;
    case 'google.protobuf.ListValue':
      if (!Array.isArray(value)) report(w, path, `expected a list (google.protobuf.ListValue), got ${describe(value)}`);
      else checkPlainJson(value, path, w);
      return value;
    case 'google.protobuf.Value':
      checkPlainJson(value, path, w);
      return value;
    default:
      break;
  }
  if (!isObject(value)) {
    report(w, path, `expected an object (${name}), got ${describe(value)}`);
    return undefined;
  }
  const out = walkFields(type, value, path, w, new Set());
  recordVisit(w, name, path, out);
  if (TYPED_STRUCTS.has(name)) walkTypedStruct(out, value, path, w);
  return out;
}

function recordVisit(w: Walk, typeName: string, path: string, value: JsonObject): void {
  let list = w.index.get(typeName);
  if (list === undefined) w.index.set(typeName, (list = []));
  list.push({ path, value });
}

function walkFields(type: Type, value: JsonObject, path: string, w: Walk, skipKeys: Set<string>): JsonObject {
  const idx = fieldIndex(type);
  const out: JsonObject = {};
  const setBy = new Map<string, string>(); // proto field name -> key used
  const present = new Set<string>(); // fields with a non-null value
  for (const [key, v] of Object.entries(value)) {
    if (skipKeys.has(key)) continue;
    const field = idx.get(key);
    if (field === undefined) {
      report(w, join(path, key), `unknown field "${key}" in ${fullName(type)}`);
      continue;
    }
    const fpath = join(path, field.name);
    const earlier = setBy.get(field.name);
    if (earlier !== undefined) {
      report(w, fpath, `field given twice, as "${earlier}" and as "${key}"`);
      continue;
    }
    setBy.set(field.name, key);
    if (v === null || v === undefined) continue; // JSON null: the field is unset
    present.add(field.name);
    markProblems(field, fpath, w);
    const c = walkField(field, v, fpath, w);
    if (c !== undefined) out[field.name] = c;
  }

  // Oneofs: at most one member; some must have one.
  for (const oneof of type.oneofsArray) {
    if (oneof.name.startsWith('_') && oneof.fieldsArray.length === 1) continue; // proto3 optional
    const set = oneof.fieldsArray.filter((f) => present.has(f.name));
    if (set.length > 1) {
      report(w, path, `oneof ${oneof.name}: only one of ${set.map((f) => f.name).join(', ')} may be set`);
    } else if (set.length === 0 && oneof.options?.['(validate.required)'] === true) {
      report(w, path, `oneof ${oneof.name}: one of ${oneof.fieldsArray.map((f) => f.name).join(', ')} is required`);
    }
  }

  // Rules that apply to absent fields: required messages, and scalar rules on the default.
  for (const field of type.fieldsArray) {
    if (present.has(field.name)) continue;
    const rules = fieldRules(field);
    if (rules === undefined) continue;
    const fpath = join(path, field.name);
    if (field.partOf !== null) continue; // oneof members (and proto3 optional): PGV checks them only when set
    if (field.map) {
      checkMapRules({}, fpath, w, sub(rules, 'map'));
      continue;
    }
    if (field.repeated) {
      checkRepeatedRules([], fpath, w, sub(rules, 'repeated'));
      continue;
    }
    if (field.resolvedType instanceof protobuf.Type) {
      const required = ['message', 'duration', 'any', 'timestamp'].some((k) => sub(rules, k)?.['required'] === true);
      if (required) report(w, fpath, `required field ${field.name} of ${fullName(type)} is missing`);
      continue;
    }
    if (field.resolvedType instanceof protobuf.Enum) {
      checkEnumRules(field.resolvedType, 0, fpath, w, sub(rules, 'enum'));
    } else {
      checkScalarRules(field.type, defaultOf(field.type), fpath, w, rules);
    }
  }
  return out;
}

function walkField(field: Field, value: Json, path: string, w: Walk): Json {
  const rules = fieldRules(field);
  if (field.map) {
    if (!isObject(value)) {
      report(w, path, `expected an object (map field ${field.name}), got ${describe(value)}`);
      return undefined;
    }
    const keyType = (field as unknown as { keyType: string }).keyType;
    const valueRules = sub(sub(rules, 'map'), 'values');
    const keyRules = sub(sub(rules, 'map'), 'keys');
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      const epath = `${path}[${JSON.stringify(k)}]`;
      if (checkMapKey(keyType, k, epath, w)) {
        checkScalarRules(keyType, keyType === 'string' ? k : keyType === 'bool' ? k === 'true' : Number(k), epath, w, keyRules);
      }
      if (v === null || v === undefined) {
        report(w, epath, 'a map value cannot be null');
        continue;
      }
      out[k] = walkSingle(field, v, epath, w, valueRules);
    }
    checkMapRules(value, path, w, sub(rules, 'map'));
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) {
      report(w, path, `expected a list (repeated field ${field.name}), got ${describe(value)}`);
      return undefined;
    }
    const itemRules = sub(sub(rules, 'repeated'), 'items');
    const out: unknown[] = [];
    value.forEach((item, i) => {
      const ipath = `${path}[${i}]`;
      if (item === null || item === undefined) {
        report(w, ipath, 'a list element cannot be null');
        return;
      }
      out.push(walkSingle(field, item, ipath, w, itemRules));
    });
    checkRepeatedRules(value, path, w, sub(rules, 'repeated'));
    return out;
  }
  const target = field.resolvedType === null ? '' : fullName(field.resolvedType);
  if (Array.isArray(value) && target !== 'google.protobuf.ListValue' && target !== 'google.protobuf.Value') {
    report(w, path, `expected a single value (field ${field.name} is not repeated), got a list`);
    return undefined;
  }
  return walkSingle(field, value, path, w, rules);
}

function walkSingle(field: Field, value: Json, path: string, w: Walk, rules: Rules | undefined): Json {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return walkEnum(t, value, path, w, sub(rules, 'enum'));
  if (t instanceof protobuf.Type) return walkMessage(t, value, path, w, rules);
  return walkScalar(field.type, value, path, w, rules);
}

// ---- Any and TypedStruct --------------------------------------------------------------

const TYPE_URL_PREFIX = 'type.googleapis.com/';

function walkAny(value: Json, path: string, w: Walk, rules: Rules | undefined): Json {
  if (!isObject(value)) {
    report(w, path, `expected an object with "@type" (google.protobuf.Any), got ${describe(value)}`);
    return undefined;
  }
  const url = value['@type'];
  if (typeof url !== 'string') {
    report(w, path, 'google.protobuf.Any without a string "@type"');
    return undefined;
  }
  const anyRules = sub(rules, 'any');
  const allowed = asList(anyRules?.['in']);
  if (allowed.length > 0 && !allowed.includes(url)) report(w, path, `@type ${url} is not one of ${allowed.join(', ')}`);
  if (asList(anyRules?.['not_in']).includes(url)) report(w, path, `@type ${url} is not allowed here`);
  if (!url.startsWith(TYPE_URL_PREFIX)) {
    report(w, path, `@type "${url}" must start with ${TYPE_URL_PREFIX}`);
    return undefined;
  }
  const inner = resolveMessageType(url.slice(TYPE_URL_PREFIX.length));
  if (inner === undefined) {
    report(w, path, `@type "${url}" names no message type of the Envoy API`);
    return undefined;
  }
  const innerName = fullName(inner);
  if (SPECIAL_JSON.has(innerName)) {
    for (const key of Object.keys(value)) {
      if (key !== '@type' && key !== 'value') report(w, join(path, key), `unknown field "${key}" in an Any holding ${innerName}`);
    }
    if (!('value' in value)) {
      report(w, path, `an Any holding ${innerName} needs its JSON in "value"`);
      return { '@type': url };
    }
    return { '@type': url, value: walkMessage(inner, value['value'], join(path, 'value'), w, undefined) };
  }
  const out = walkFields(inner, value, path, w, new Set(['@type']));
  recordVisit(w, innerName, path, out);
  if (TYPED_STRUCTS.has(innerName)) walkTypedStruct(out, value, path, w);
  return { '@type': url, ...out };
}

function resolveMessageType(name: string): Type | undefined {
  if (name === '' || name.startsWith('.')) return undefined;
  try {
    const found = upstreamRoot().lookup(name);
    return found instanceof protobuf.Type ? found : undefined;
  } catch {
    return undefined;
  }
}

// TypedStruct {type_url, value: Struct}: Envoy converts `value` to the message `type_url`.
function walkTypedStruct(out: JsonObject, raw: JsonObject, path: string, w: Walk): void {
  const url = out['type_url'];
  if (typeof url !== 'string' || url === '') {
    report(w, join(path, 'type_url'), 'TypedStruct needs a type_url');
    return;
  }
  const name = url.slice(url.lastIndexOf('/') + 1);
  const inner = resolveMessageType(name);
  if (inner === undefined) {
    report(w, join(path, 'type_url'), `type_url "${url}" names no message type of the Envoy API`);
    return;
  }
  const v = raw['value'] ?? {};
  out['value'] = walkMessage(inner, v, join(path, 'value'), w, undefined);
}

function checkPlainJson(value: unknown, path: string, w: Walk): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) report(w, path, 'a JSON number must be finite');
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkPlainJson(v, `${path}[${i}]`, w));
    return;
  }
  if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) checkPlainJson(v, `${path}[${JSON.stringify(k)}]`, w);
    return;
  }
  report(w, path, `not a JSON value: ${describe(value)}`);
}

// ---- Duration -------------------------------------------------------------------------

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const MAX_DURATION_SECONDS = 315_576_000_000;

/** Seconds (as a float) of a proto3 JSON duration string, or undefined. */
function parseDuration(s: string): number | undefined {
  const m = DURATION.exec(s);
  if (m === null) return undefined;
  const secs = Number(m[2]);
  if (secs > MAX_DURATION_SECONDS) return undefined;
  const frac = m[3] === undefined ? 0 : Number(`0.${m[3]}`);
  return (m[1] === '-' ? -1 : 1) * (secs + frac);
}

function durationOfRule(v: unknown): number | undefined {
  if (!isObject(v)) return undefined;
  return Number(v['seconds'] ?? 0) + Number(v['nanos'] ?? 0) / 1e9;
}

function walkDuration(value: Json, path: string, w: Walk, rules: Rules | undefined): Json {
  const secs = typeof value === 'string' ? parseDuration(value) : undefined;
  if (secs === undefined) {
    report(w, path, `expected a duration string such as "5s" or "0.250s", got ${describe(value)}`);
    return value;
  }
  const r = sub(rules, 'duration');
  if (r !== undefined) {
    const bound = (k: string): number | undefined => durationOfRule(r[k]);
    checkNumberBounds(secs, path, w, {
      const: bound('const'),
      lt: bound('lt'),
      lte: bound('lte'),
      gt: bound('gt'),
      gte: bound('gte'),
      in: asList(r['in']).map(durationOfRule),
      not_in: asList(r['not_in']).map(durationOfRule),
      unit: 's',
    });
  }
  return value;
}

// ---- scalars --------------------------------------------------------------------------

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$|^[A-Za-z0-9\-_]*={0,2}$/;

function defaultOf(kind: string): unknown {
  if (kind === 'string' || kind === 'bytes') return '';
  if (kind === 'bool') return false;
  return 0;
}

/** Checks a JSON scalar of proto kind `kind`; returns the canonical value. */
function walkScalar(kind: string, value: Json, path: string, w: Walk, rules: Rules | undefined): Json {
  const range = INT_RANGES[kind];
  if (range !== undefined) {
    let n: bigint | undefined;
    if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
    else if (typeof value === 'string' && /^-?\d+$/.test(value)) n = BigInt(value);
    if (n === undefined) {
      report(w, path, `expected an integer (${kind}), got ${describe(value)}`);
      return value;
    }
    if (n < range[0] || n > range[1]) {
      report(w, path, `${n} is out of range for ${kind}`);
      return value;
    }
    checkScalarRules(kind, Number(n), path, w, rules);
    return Number(n);
  }
  switch (kind) {
    case 'double':
    case 'float': {
      let n: number | undefined;
      if (typeof value === 'number') n = value;
      else if (typeof value === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(value)) n = Number(value);
      else if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) n = Number(value);
      if (n === undefined) {
        report(w, path, `expected a number (${kind}), got ${describe(value)}`);
        return value;
      }
      if (kind === 'float' && Number.isFinite(n) && Math.abs(n) > 3.4028234663852886e38) {
        report(w, path, `${n} is out of range for float`);
      }
      checkScalarRules(kind, n, path, w, rules);
      return n;
    }
    case 'bool':
      if (typeof value !== 'boolean') {
        report(w, path, `expected true or false, got ${describe(value)}`);
        return value;
      }
      checkScalarRules(kind, value, path, w, rules);
      return value;
    case 'string':
      if (typeof value !== 'string') {
        report(w, path, `expected a string, got ${describe(value)}`);
        return value;
      }
      checkScalarRules(kind, value, path, w, rules);
      return value;
    case 'bytes':
      if (typeof value !== 'string' || !BASE64.test(value)) {
        report(w, path, `expected base64-encoded bytes, got ${describe(value)}`);
        return value;
      }
      checkScalarRules(kind, value, path, w, rules);
      return value;
    default:
      report(w, path, `unsupported field kind ${kind}`);
      return value;
  }
}

/** Checks the text of a map key against the key type; true when it is valid. */
function checkMapKey(keyType: string, key: string, path: string, w: Walk): boolean {
  if (keyType === 'string') return true;
  if (keyType === 'bool') {
    if (key === 'true' || key === 'false') return true;
    report(w, path, `map key must be "true" or "false"`);
    return false;
  }
  const range = INT_RANGES[keyType];
  if (range === undefined || !/^-?\d+$/.test(key) || BigInt(key) < range[0] || BigInt(key) > range[1]) {
    report(w, path, `map key must be a ${keyType}`);
    return false;
  }
  return true;
}

// ---- enums ----------------------------------------------------------------------------

function walkEnum(e: Enum, value: Json, path: string, w: Walk, rules: Rules | undefined): Json {
  let num: number;
  let canonical: Json;
  if (typeof value === 'string') {
    const n = e.values[value];
    if (n === undefined) {
      const names = Object.keys(e.values);
      report(w, path, `unknown value ${JSON.stringify(value)} for enum ${fullName(e)} (one of ${names.join(', ')})`);
      return value;
    }
    num = n;
    canonical = value;
  } else if (typeof value === 'number' && Number.isInteger(value)) {
    num = value;
    canonical = e.valuesById[value] ?? value;
  } else {
    report(w, path, `expected an enum name of ${fullName(e)}, got ${describe(value)}`);
    return value;
  }
  const name = e.valuesById[num];
  const valueOpts = name === undefined ? undefined : e.valuesOptions?.[name];
  if (valueOpts?.['deprecated'] === true && w.options.allowDeprecated !== true) {
    report(w, path, `deprecated enum value ${name} of ${fullName(e)}`);
  }
  if (valueOpts?.['(envoy.annotations.disallowed_by_default_enum)'] === true) {
    report(w, path, `enum value ${name} of ${fullName(e)} is disallowed by default in Envoy`);
  }
  checkEnumRules(e, num, path, w, rules);
  return canonical;
}

function checkEnumRules(e: Enum, num: number, path: string, w: Walk, r: Rules | undefined): void {
  if (r === undefined) return;
  const label = e.valuesById[num] ?? String(num);
  if (r['defined_only'] === true && e.valuesById[num] === undefined) {
    report(w, path, `${num} is not a defined value of enum ${fullName(e)}`);
  }
  if (r['const'] !== undefined && Number(r['const']) !== num) report(w, path, `must be ${String(r['const'])}`);
  const allowed = asList(r['in']).map(Number);
  if (allowed.length > 0 && !allowed.includes(num)) report(w, path, `${label} is not an allowed value here`);
  if (asList(r['not_in']).map(Number).includes(num)) {
    report(w, path, `${label} is not allowed here${num === 0 ? ' (set a value; the default 0 is rejected)' : ''}`);
  }
}

// ---- PGV scalar rules -----------------------------------------------------------------

interface Bounds {
  const?: number | undefined;
  lt?: number | undefined;
  lte?: number | undefined;
  gt?: number | undefined;
  gte?: number | undefined;
  in?: (number | undefined)[];
  not_in?: (number | undefined)[];
  unit?: string;
}

function checkNumberBounds(n: number, path: string, w: Walk, b: Bounds): void {
  const u = b.unit ?? '';
  const show = (x: number): string => `${x}${u}`;
  if (b.const !== undefined && n !== b.const) report(w, path, `must equal ${show(b.const)}`);
  const lower = b.gt ?? b.gte;
  const upper = b.lt ?? b.lte;
  const aboveLower = b.gt !== undefined ? n > b.gt : b.gte !== undefined ? n >= b.gte : true;
  const belowUpper = b.lt !== undefined ? n < b.lt : b.lte !== undefined ? n <= b.lte : true;
  if (lower !== undefined && upper !== undefined && upper < lower) {
    // PGV exclusive range: outside [upper, lower].
    if (!aboveLower && !belowUpper) report(w, path, `${show(n)} must be outside the range ${show(upper)}..${show(lower)}`);
  } else {
    if (!aboveLower) report(w, path, `${show(n)} must be ${b.gt !== undefined ? '>' : '>='} ${show(lower ?? 0)}`);
    if (!belowUpper) report(w, path, `${show(n)} must be ${b.lt !== undefined ? '<' : '<='} ${show(upper ?? 0)}`);
  }
  const allowed = (b.in ?? []).filter((x): x is number => x !== undefined);
  if (allowed.length > 0 && !allowed.includes(n)) report(w, path, `${show(n)} must be one of ${allowed.map(show).join(', ')}`);
  if ((b.not_in ?? []).includes(n)) report(w, path, `${show(n)} is not allowed`);
}

const toNum = (v: unknown): number | undefined => (v === undefined ? undefined : Number(v));

const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
// eslint-disable-next-line no-control-regex
const HEADER_VALUE_STRICT = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
// eslint-disable-next-line no-control-regex
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

function checkScalarRules(kind: string, value: unknown, path: string, w: Walk, rules: Rules | undefined): void {
  if (rules === undefined) return;
  if (kind === 'string' && typeof value === 'string') {
    checkStringRules(value, path, w, sub(rules, 'string'));
    return;
  }
  if (kind === 'bytes' && typeof value === 'string') {
    const r = sub(rules, 'bytes');
    if (r === undefined || (r['ignore_empty'] === true && value === '')) return;
    const len = Buffer.from(value, 'base64').length;
    if (r['len'] !== undefined && len !== Number(r['len'])) report(w, path, `must be exactly ${String(r['len'])} bytes`);
    if (r['min_len'] !== undefined && len < Number(r['min_len'])) report(w, path, `must be at least ${String(r['min_len'])} bytes`);
    if (r['max_len'] !== undefined && len > Number(r['max_len'])) report(w, path, `must be at most ${String(r['max_len'])} bytes`);
    return;
  }
  if (kind === 'bool' && typeof value === 'boolean') {
    const r = sub(rules, 'bool');
    if (r?.['const'] !== undefined && r['const'] !== value) report(w, path, `must be ${String(r['const'])}`);
    return;
  }
  if (typeof value === 'number') {
    const r = sub(rules, kind);
    if (r === undefined || (r['ignore_empty'] === true && value === 0)) return;
    checkNumberBounds(value, path, w, {
      const: toNum(r['const']),
      lt: toNum(r['lt']),
      lte: toNum(r['lte']),
      gt: toNum(r['gt']),
      gte: toNum(r['gte']),
      in: asList(r['in']).map(Number),
      not_in: asList(r['not_in']).map(Number),
    });
  }
}

function checkStringRules(s: string, path: string, w: Walk, r: Rules | undefined): void {
  if (r === undefined) return;
  if (r['ignore_empty'] === true && s === '') return;
  const chars = Array.from(s).length;
  const bytes = Buffer.byteLength(s, 'utf8');
  const shown = s.length > 40 ? `${JSON.stringify(s.slice(0, 40))}...` : JSON.stringify(s);
  if (r['const'] !== undefined && s !== r['const']) report(w, path, `must be ${JSON.stringify(r['const'])}`);
  if (r['len'] !== undefined && chars !== Number(r['len'])) report(w, path, `must be exactly ${String(r['len'])} characters`);
  if (r['min_len'] !== undefined && chars < Number(r['min_len'])) {
    report(w, path, s === '' ? 'must not be empty' : `must be at least ${String(r['min_len'])} characters`);
  }
  if (r['max_len'] !== undefined && chars > Number(r['max_len'])) report(w, path, `must be at most ${String(r['max_len'])} characters`);
  if (r['min_bytes'] !== undefined && bytes < Number(r['min_bytes'])) report(w, path, `must be at least ${String(r['min_bytes'])} bytes`);
  if (r['max_bytes'] !== undefined && bytes > Number(r['max_bytes'])) report(w, path, `must be at most ${String(r['max_bytes'])} bytes`);
  if (typeof r['prefix'] === 'string' && !s.startsWith(r['prefix'])) report(w, path, `must start with ${JSON.stringify(r['prefix'])}`);
  if (typeof r['suffix'] === 'string' && !s.endsWith(r['suffix'])) report(w, path, `must end with ${JSON.stringify(r['suffix'])}`);
  if (typeof r['contains'] === 'string' && !s.includes(r['contains'])) report(w, path, `must contain ${JSON.stringify(r['contains'])}`);
  if (typeof r['not_contains'] === 'string' && s.includes(r['not_contains'])) {
    report(w, path, `must not contain ${JSON.stringify(r['not_contains'])}`);
  }
  const allowed = asList(r['in']).map(String);
  if (allowed.length > 0 && !allowed.includes(s)) report(w, path, `${shown} must be one of ${allowed.join(', ')}`);
  if (asList(r['not_in']).map(String).includes(s)) report(w, path, `${shown} is not allowed`);
  if (typeof r['pattern'] === 'string') {
    let re: RegExp | undefined;
    try {
      re = new RegExp(r['pattern'], 'u');
    } catch {
      re = undefined; // an RE2 construct JavaScript lacks: not checked
    }
    if (re !== undefined && !re.test(s)) report(w, path, `${shown} does not match ${r['pattern']}`);
  }
  const strict = r['strict'] !== false;
  if (r['well_known_regex'] === 'HTTP_HEADER_NAME' && !(strict ? HEADER_NAME_STRICT : HEADER_LOOSE).test(s)) {
    report(w, path, `${shown} is not a valid HTTP header name`);
  }
  if (r['well_known_regex'] === 'HTTP_HEADER_VALUE' && !(strict ? HEADER_VALUE_STRICT : HEADER_LOOSE).test(s)) {
    report(w, path, `${shown} is not a valid HTTP header value`);
  }
  if (r['ip'] === true && isIP(s) === 0) report(w, path, `${shown} is not an IP address`);
  if (r['ipv4'] === true && isIP(s) !== 4) report(w, path, `${shown} is not an IPv4 address`);
  if (r['ipv6'] === true && isIP(s) !== 6) report(w, path, `${shown} is not an IPv6 address`);
  if (r['hostname'] === true && !HOSTNAME.test(s)) report(w, path, `${shown} is not a host name`);
  if (r['address'] === true && isIP(s) === 0 && !HOSTNAME.test(s)) report(w, path, `${shown} is not an IP address or host name`);
  if (r['uri'] === true && !URL.canParse(s)) report(w, path, `${shown} is not an absolute URI`);
}

function checkRepeatedRules(list: unknown[], path: string, w: Walk, r: Rules | undefined): void {
  if (r === undefined) return;
  if (r['ignore_empty'] === true && list.length === 0) return;
  if (r['min_items'] !== undefined && list.length < Number(r['min_items'])) {
    report(w, path, `needs at least ${String(r['min_items'])} item(s), has ${list.length}`);
  }
  if (r['max_items'] !== undefined && list.length > Number(r['max_items'])) {
    report(w, path, `allows at most ${String(r['max_items'])} item(s), has ${list.length}`);
  }
  if (r['unique'] === true) {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      const key = JSON.stringify(item);
      if (seen.has(key)) report(w, `${path}[${i}]`, `duplicate item ${key} (items must be unique)`);
      seen.add(key);
    });
  }
}

function checkMapRules(map: JsonObject, path: string, w: Walk, r: Rules | undefined): void {
  if (r === undefined) return;
  const n = Object.keys(map).length;
  if (r['ignore_empty'] === true && n === 0) return;
  if (r['min_pairs'] !== undefined && n < Number(r['min_pairs'])) report(w, path, `needs at least ${String(r['min_pairs'])} entries`);
  if (r['max_pairs'] !== undefined && n > Number(r['max_pairs'])) report(w, path, `allows at most ${String(r['max_pairs'])} entries`);
}

// =======================================================================================
// Consistency of a Bootstrap

const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const TLS = 'envoy.extensions.transport_sockets.tls.v3';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const FILE_BASED_METADATA = 'envoy.grpc_credentials.file_based_metadata';
const GRPC_API_TYPES = new Set(['GRPC', 'DELTA_GRPC', 'AGGREGATED_GRPC', 'AGGREGATED_DELTA_GRPC']);

const obj = (v: unknown): JsonObject => (isObject(v) ? v : {});
const list = (v: unknown): JsonObject[] => (Array.isArray(v) ? v.filter(isObject) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const typeOfAny = (v: unknown): string => {
  const url = str(obj(v)['@type']);
  return url.slice(url.lastIndexOf('/') + 1);
};

/**
 * Cross-reference checks of a Bootstrap that the types alone cannot express:
 * - cluster names are unique, and every cluster named by an `envoy_grpc` service, a route
 *   (`cluster`, `weighted_clusters`, `request_mirror_policies`) or a TCP proxy exists in
 *   `static_resources.clusters` (route/filter references may also be CDS clusters when
 *   `dynamic_resources.cds_config` is set; xDS config sources never);
 * - every cluster an `envoy_grpc` service uses speaks HTTP/2 (typed_extension_protocol_options
 *   `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` with explicit HTTP/2, or
 *   auto_config over TLS), and xDS clusters are not EDS;
 * - gRPC ApiConfigSources have grpc_services, `transport_api_version: V3`, no cluster_names;
 *   ConfigSources say `resource_api_version: V3`; `ads: {}` needs a bootstrap `ads_config`;
 * - `node.id` and `node.cluster` are set when any xDS (hence SDS) subscription exists;
 * - SDS secret names are non-empty and listed once per TLS context; SDS configs without
 *   `sds_config` name a secret of `static_resources.secrets`; an upstream (client) TLS
 *   context has at most one certificate;
 * - listeners carry DownstreamTlsContext and clusters UpstreamTlsContext;
 * - pipe paths (and `unix:` gRPC targets) are absolute;
 * - HTTP connection managers end their filter chain with the router;
 * - STATIC clusters use IP addresses, DNS clusters do not use pipes;
 * - google_grpc call credentials are usable: a file_based_metadata plugin needs
 *   `credentials_factory_name: envoy.grpc_credentials.file_based_metadata` (Envoy's default
 *   factory ignores plugins), and call credentials need TLS or a Unix socket (gRPC does not
 *   send them over plaintext TCP).
 * Problems in the types are not repeated here: run `checkEnvoyJson` for those.
 */
export function checkBootstrapConsistency(bootstrap: unknown): string[] {
  const { canonical: b, index } = analyze(BOOTSTRAP, bootstrap, { allowDeprecated: true });
  const out: string[] = [];
  const problem = (path: string, what: string): void => void out.push(`${path === '' ? '(root)' : path}: ${what}`);
  const visits = (type: string): Visit[] => index.get(type) ?? [];

  const staticResources = obj(b['static_resources']);
  const dynamicResources = obj(b['dynamic_resources']);
  const clusters = new Map<string, { path: string; value: JsonObject }>();
  list(staticResources['clusters']).forEach((c, i) => {
    const path = `static_resources.clusters[${i}]`;
    const name = str(c['name']);
    if (clusters.has(name)) problem(join(path, 'name'), `duplicate cluster name "${name}"`);
    else clusters.set(name, { path, value: c });
  });
  const listenerNames = new Set<string>();
  list(staticResources['listeners']).forEach((l, i) => {
    const name = str(l['name']);
    if (name === '') return;
    if (listenerNames.has(name)) problem(`static_resources.listeners[${i}].name`, `duplicate listener name "${name}"`);
    listenerNames.add(name);
  });
  const hasCds = 'cds_config' in dynamicResources;
  const hasAdsConfig = 'ads_config' in dynamicResources;

  // xDS config sources.
  const xdsGrpcPaths = new Set<string>();
  let subscribes = hasAdsConfig;
  for (const { path, value } of visits('envoy.config.core.v3.ApiConfigSource')) {
    const apiType = str(value['api_type']);
    const services = list(value['grpc_services']);
    if (apiType === '' || apiType === 'DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE') {
      problem(join(path, 'api_type'), 'api_type is required (GRPC, DELTA_GRPC, ...)');
    }
    if (GRPC_API_TYPES.has(apiType)) {
      if (services.length === 0) problem(join(path, 'grpc_services'), `api_type ${apiType} needs one grpc_services entry`);
      if (asList(value['cluster_names']).length > 0) {
        problem(join(path, 'cluster_names'), `cluster_names is for REST; api_type ${apiType} uses grpc_services`);
      }
    }
    if (str(value['transport_api_version']) !== 'V3') {
      problem(join(path, 'transport_api_version'), 'must be V3 (Envoy rejects AUTO and V2)');
    }
    services.forEach((_s, i) => xdsGrpcPaths.add(`${join(path, 'grpc_services')}[${i}]`));
  }
  for (const { path, value } of visits('envoy.config.core.v3.ConfigSource')) {
    if ('api_config_source' in value || 'ads' in value) subscribes = true;
    if ('ads' in value && !hasAdsConfig) problem(join(path, 'ads'), 'ads: {} needs dynamic_resources.ads_config in the bootstrap');
    if (str(value['resource_api_version']) !== 'V3') problem(join(path, 'resource_api_version'), 'must be V3');
  }

  // gRPC services, wherever they are.
  const grpcClusters = new Map<string, string>(); // cluster -> first referencing path
  for (const { path, value } of visits('envoy.config.core.v3.GrpcService')) {
    const isXds = xdsGrpcPaths.has(path);
    const envoyGrpc = value['envoy_grpc'];
    if (isObject(envoyGrpc)) {
      const name = str(envoyGrpc['cluster_name']);
      const cpath = join(path, 'envoy_grpc.cluster_name');
      const cluster = clusters.get(name);
      if (cluster === undefined) {
        if (isXds || !hasCds) {
          problem(cpath, `cluster "${name}" is not defined in static_resources.clusters${isXds ? ' (xDS clusters must be static)' : ''}`);
        }
      } else {
        if (!grpcClusters.has(name)) grpcClusters.set(name, cpath);
        if (isXds && str(cluster.value['type']) === 'EDS') problem(cpath, `xDS cluster "${name}" must not be an EDS cluster`);
      }
    }
    const googleGrpc = value['google_grpc'];
    if (isObject(googleGrpc)) checkGoogleGrpc(googleGrpc, join(path, 'google_grpc'), problem);
  }
  for (const [name, refPath] of grpcClusters) {
    const cluster = clusters.get(name);
    if (cluster !== undefined && !speaksHttp2(cluster.value)) {
      problem(
        cluster.path,
        `cluster "${name}" carries gRPC (${refPath}) but is not configured for HTTP/2 (typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS}"].explicit_http_config.http2_protocol_options)`,
      );
    }
  }

  // Clusters named by routes and TCP proxies.
  const needCluster = (path: string, name: unknown): void => {
    if (typeof name !== 'string' || hasCds) return;
    if (!clusters.has(name)) problem(path, `cluster "${name}" is not defined in static_resources.clusters`);
  };
  for (const { path, value } of visits('envoy.config.route.v3.RouteAction')) {
    needCluster(join(path, 'cluster'), value['cluster']);
    list(obj(value['weighted_clusters'])['clusters']).forEach((c, i) =>
      needCluster(`${path}.weighted_clusters.clusters[${i}].name`, c['name']),
    );
    list(value['request_mirror_policies']).forEach((m, i) => needCluster(`${path}.request_mirror_policies[${i}].cluster`, m['cluster']));
  }
  for (const { path, value } of visits('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy')) {
    needCluster(join(path, 'cluster'), value['cluster']);
    list(obj(value['weighted_clusters'])['clusters']).forEach((c, i) =>
      needCluster(`${path}.weighted_clusters.clusters[${i}].name`, c['name']),
    );
  }

  // Node identity.
  if (subscribes) {
    const node = obj(b['node']);
    if (str(node['id']) === '') problem('node.id', 'Envoy needs node.id for xDS/SDS subscriptions');
    if (str(node['cluster']) === '') problem('node.cluster', 'Envoy needs node.cluster for xDS/SDS subscriptions');
  }

  // SDS secret references.
  const staticSecrets = new Set(list(staticResources['secrets']).map((s) => str(s['name'])));
  for (const { path, value } of visits(`${TLS}.CommonTlsContext`)) {
    const seen = new Set<string>();
    list(value['tls_certificate_sds_secret_configs']).forEach((s, i) => {
      const name = str(s['name']);
      if (name === '') return; // reported below for every SdsSecretConfig
      if (seen.has(name))
        problem(`${path}.tls_certificate_sds_secret_configs[${i}].name`, `secret "${name}" is listed twice in this TLS context`);
      seen.add(name);
    });
  }
  for (const { path, value } of visits(`${TLS}.SdsSecretConfig`)) {
    const name = str(value['name']);
    if (name === '') problem(join(path, 'name'), 'an SDS secret name must not be empty');
    else if (!('sds_config' in value) && !staticSecrets.has(name)) {
      problem(join(path, 'name'), `no sds_config, and no static_resources.secrets entry named "${name}"`);
    }
  }
  for (const { path, value } of visits(`${TLS}.UpstreamTlsContext`)) {
    const common = obj(value['common_tls_context']);
    const certs = list(common['tls_certificates']).length + list(common['tls_certificate_sds_secret_configs']).length;
    if (certs > 1)
      problem(join(path, 'common_tls_context'), `an upstream (client) TLS context takes at most one certificate, has ${certs}`);
  }

  // Which side of TLS.
  list(staticResources['listeners']).forEach((l, i) => {
    const chains = list(l['filter_chains']).map((fc, j) => ({ fc, p: `static_resources.listeners[${i}].filter_chains[${j}]` }));
    if (isObject(l['default_filter_chain']))
      chains.push({ fc: l['default_filter_chain'], p: `static_resources.listeners[${i}].default_filter_chain` });
    for (const { fc, p } of chains) {
      const t = typeOfAny(obj(fc['transport_socket'])['typed_config']);
      if (t === `${TLS}.UpstreamTlsContext`)
        problem(`${p}.transport_socket.typed_config`, 'a listener needs a DownstreamTlsContext, not an UpstreamTlsContext');
    }
  });
  for (const [name, { path, value }] of clusters) {
    const sockets = [{ s: value['transport_socket'], p: join(path, 'transport_socket') }];
    list(value['transport_socket_matches']).forEach((m, i) =>
      sockets.push({ s: m['transport_socket'], p: `${path}.transport_socket_matches[${i}].transport_socket` }),
    );
    for (const { s, p } of sockets) {
      if (typeOfAny(obj(s)['typed_config']) === `${TLS}.DownstreamTlsContext`) {
        problem(`${p}.typed_config`, `cluster "${name}" needs an UpstreamTlsContext, not a DownstreamTlsContext`);
      }
    }
    checkClusterAddresses(name, path, value, problem);
  }

  // Pipes.
  for (const { path, value } of visits('envoy.config.core.v3.Pipe')) {
    const p = str(value['path']);
    if (!p.startsWith('/') && !p.startsWith('@')) problem(join(path, 'path'), `pipe path "${p}" must be absolute (or @abstract)`);
  }

  // HTTP connection managers end with the router.
  for (const { path, value } of visits('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager')) {
    const filters = list(value['http_filters']);
    const last = filters[filters.length - 1];
    if (last === undefined) problem(join(path, 'http_filters'), 'needs the router filter (envoy.filters.http.router) last');
    else if (typeOfAny(last['typed_config']) !== ROUTER && !(last['name'] === 'envoy.filters.http.router' && !('typed_config' in last))) {
      problem(
        `${path}.http_filters[${filters.length - 1}]`,
        'the last HTTP filter must be the router (envoy.extensions.filters.http.router.v3.Router)',
      );
    }
  }
  return out;
}

function speaksHttp2(cluster: JsonObject): boolean {
  const options = obj(cluster['typed_extension_protocol_options']);
  const http = options[HTTP_PROTOCOL_OPTIONS];
  if (isObject(http)) {
    if (isObject(obj(http['explicit_http_config'])['http2_protocol_options'])) return true;
    // auto_config negotiates with ALPN, which needs TLS to the upstream.
    if (isObject(http['auto_config']) && typeOfAny(obj(cluster['transport_socket'])['typed_config']) === `${TLS}.UpstreamTlsContext`) {
      return true;
    }
    return false;
  }
  return isObject(cluster['http2_protocol_options']); // the deprecated cluster-level field
}

function checkClusterAddresses(name: string, path: string, cluster: JsonObject, problem: (p: string, w: string) => void): void {
  const type = str(cluster['type']) || ('cluster_type' in cluster ? 'CUSTOM' : 'STATIC');
  const endpoints = list(obj(cluster['load_assignment'])['endpoints']);
  endpoints.forEach((e, i) => {
    list(e['lb_endpoints']).forEach((lb, j) => {
      const apath = `${path}.load_assignment.endpoints[${i}].lb_endpoints[${j}].endpoint.address`;
      const address = obj(obj(lb['endpoint'])['address']);
      const socket = address['socket_address'];
      if (type === 'STATIC' && isObject(socket) && isIP(str(socket['address'])) === 0) {
        problem(
          `${apath}.socket_address.address`,
          `STATIC cluster "${name}" needs an IP address, not "${str(socket['address'])}" (use STRICT_DNS or LOGICAL_DNS for names)`,
        );
      }
      if ((type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && 'pipe' in address) {
        problem(`${apath}.pipe`, `${type} cluster "${name}" cannot use a pipe address`);
      }
    });
  });
  const options = obj(cluster['typed_extension_protocol_options']);
  for (const [key, v] of Object.entries(options)) {
    if (typeOfAny(v) === HTTP_PROTOCOL_OPTIONS && key !== HTTP_PROTOCOL_OPTIONS) {
      problem(
        `${path}.typed_extension_protocol_options[${JSON.stringify(key)}]`,
        `HttpProtocolOptions must be keyed "${HTTP_PROTOCOL_OPTIONS}"`,
      );
    }
  }
}

function checkGoogleGrpc(g: JsonObject, path: string, problem: (p: string, w: string) => void): void {
  const target = str(g['target_uri']);
  if (target.startsWith('unix:') && !target.startsWith('unix:/')) {
    problem(join(path, 'target_uri'), `"${target}" is a relative Unix socket path; use unix:/absolute/path`);
  }
  const calls = list(g['call_credentials']);
  const plugins = calls.map((c) => str(obj(c['from_plugin'])['name'])).filter((n) => n !== '');
  if (plugins.includes(FILE_BASED_METADATA) && str(g['credentials_factory_name']) !== FILE_BASED_METADATA) {
    problem(
      join(path, 'credentials_factory_name'),
      `must be ${FILE_BASED_METADATA}: Envoy's default credentials factory ignores from_plugin call credentials`,
    );
  }
  if (calls.length > 0) {
    const channel = obj(g['channel_credentials']);
    const overUds = target.startsWith('unix:') || target.startsWith('unix-abstract:');
    const viaFactory = str(g['credentials_factory_name']) === FILE_BASED_METADATA; // defaults to TLS
    const secure =
      'ssl_credentials' in channel ||
      'google_default' in channel ||
      ('local_credentials' in channel && overUds) ||
      (viaFactory && !('local_credentials' in channel));
    if (!secure) {
      problem(
        join(path, 'channel_credentials'),
        'gRPC sends call credentials only over TLS (ssl_credentials) or a Unix socket (local_credentials)',
      );
    }
  }
}

// =======================================================================================
// SDS secret references

export type SdsSecretKind = 'tls_certificate' | 'validation_context' | 'session_ticket_keys' | 'generic_secret';

export interface SdsSecretRef {
  /** The secret name Envoy puts in `resource_names`. */
  name: string;
  /** What Envoy expects in the Secret it receives. */
  kind: SdsSecretKind;
  /**
   * How Envoy fetches it: `grpc` / `delta_grpc` (its own SecretDiscoveryService stream per
   * name), `ads` (the shared ADS stream), `static` (static_resources.secrets, no request),
   * `other` (a file or REST config source).
   */
  source: 'grpc' | 'delta_grpc' | 'ads' | 'static' | 'other';
  /** Where in the bootstrap, e.g. `static_resources.listeners[0]...tls_certificate_sds_secret_configs[0]`. */
  path: string;
}

/**
 * Every SDS secret reference in a Bootstrap (TLS contexts of listeners and clusters, and any
 * other SdsSecretConfig), in document order, one entry per reference: the same name used in
 * two places appears twice.
 */
export function sdsSecretNames(bootstrap: unknown): SdsSecretRef[] {
  const { index } = analyze(BOOTSTRAP, bootstrap, { allowDeprecated: true });
  const refs: SdsSecretRef[] = [];
  for (const { path, value } of index.get(`${TLS}.SdsSecretConfig`) ?? []) {
    const field =
      path
        .replace(/\[\d+\]$/, '')
        .split('.')
        .pop() ?? '';
    const kind: SdsSecretKind =
      field === 'tls_certificate_sds_secret_configs'
        ? 'tls_certificate'
        : field === 'validation_context_sds_secret_config'
          ? 'validation_context'
          : field === 'session_ticket_keys_sds_secret_config'
            ? 'session_ticket_keys'
            : 'generic_secret';
    refs.push({ name: str(value['name']), kind, source: sourceOf(value['sds_config']), path });
  }
  return refs; // the walk meets them in document order
}

function sourceOf(sdsConfig: unknown): SdsSecretRef['source'] {
  if (!isObject(sdsConfig)) return 'static';
  if ('ads' in sdsConfig) return 'ads';
  const api = obj(sdsConfig['api_config_source']);
  if (api['api_type'] === 'GRPC') return 'grpc';
  if (api['api_type'] === 'DELTA_GRPC') return 'delta_grpc';
  return 'other';
}

// =======================================================================================
// For rule checks written elsewhere (envoy-hardening-check.ts)

/** A Bootstrap in canonical form: proto field names, nulls dropped, enums by name. */
export function canonicalBootstrap(bootstrap: unknown): Record<string, unknown> {
  return analyze(BOOTSTRAP, bootstrap, { allowDeprecated: true }).canonical;
}

/** Seconds of a proto3 JSON Duration ("15s", "0.250s"), or undefined when it is not one. */
export function durationSeconds(value: unknown): number | undefined {
  return typeof value === 'string' ? parseDuration(value) : undefined;
}
