// Readers for the `issuance:` section and the resources in it. Each one takes the
// field's path so a mistake is reported as `issuance.resources[2].spec.dnsNames[0]: ...`,
// the way `kubectl apply` points at a field.

import { ConfigError } from '../config/config-error.js';

export type Doc = Record<string, unknown>;

export function obj(v: unknown, at: string): Doc {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(at, 'must be a mapping');
  return v as Doc;
}

/** A mapping, or {} when the field is absent or null (YAML `selfSigned: {}` vs `selfSigned:`). */
export function optObj(v: unknown, at: string): Doc | undefined {
  return v === undefined ? undefined : v === null ? {} : obj(v, at);
}

export function arr(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw new ConfigError(at, 'must be a list');
  return v;
}

export function str(v: unknown, at: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(at, 'must be a non-empty string');
  return v;
}

export function optStr(v: unknown, at: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, at);
}

export function strList(v: unknown, at: string): string[] {
  if (v === undefined || v === null) return [];
  return arr(v, at).map((x, i) => str(x, `${at}[${i}]`));
}

export function optBool(v: unknown, at: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(at, 'must be true or false');
  return v;
}

export function optInt(v: unknown, at: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(at, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

export function oneOf<T extends string>(v: unknown, at: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw new ConfigError(at, `must be one of ${values.join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as T;
}

/**
 * Refuses fields we do not know, so a typo is an error rather than a silently ignored
 * setting. `ignored` lists cert-manager fields that are accepted for compatibility and
 * have no effect here (documented next to each caller).
 */
export function known(o: Doc, at: string, keys: readonly string[], ignored: readonly string[] = []): void {
  for (const k of Object.keys(o)) {
    if (keys.includes(k) || ignored.includes(k)) continue;
    throw new ConfigError(`${at}.${k}`, `unknown field (expected one of: ${keys.join(', ')})`);
  }
}
