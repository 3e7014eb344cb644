// A zod schema as a Kubernetes structural OpenAPI v3 schema (what a CRD's
// openAPIV3Schema must be): every node typed, no additionalProperties beside properties
// (unknown fields are pruned, or refused by kubectl's strict field validation), open
// mappings kept with x-kubernetes-preserve-unknown-fields, defaults and enums carried.

import * as z from 'zod';

export type JsonSchema = { [key: string]: unknown };

// zod's bounds for "an integer" say nothing a reader needs.
const SAFE = Number.MAX_SAFE_INTEGER;

export function structuralSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' }) as JsonSchema;
  delete json['$schema'];
  return structural(json);
}

function structural(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'properties') out[key] = mapValues(value as Record<string, JsonSchema>, structural);
    else if (key === 'items') out[key] = structural(value as JsonSchema);
    else if (key === 'additionalProperties') continue;
    else if ((key === 'minimum' && value === -SAFE) || (key === 'maximum' && value === SAFE)) continue;
    else out[key] = value;
  }
  const extra = node['additionalProperties'];
  if (typeof extra === 'object' && extra !== null && !('properties' in node && Object.keys(node['properties'] as object).length > 0)) {
    if (Object.keys(extra).length === 0) out['x-kubernetes-preserve-unknown-fields'] = true;
    else out['additionalProperties'] = structural(extra as JsonSchema);
  }
  if (node['type'] === 'object' && extra !== undefined && typeof extra === 'object' && extra !== null && Object.keys(extra).length === 0) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  if (out['properties'] !== undefined && Object.keys(out['properties'] as object).length === 0) delete out['properties'];
  // Any value (z.unknown): kept as it is, so a rule can see it and refuse it with a reason.
  if (out['type'] === undefined && out['x-kubernetes-preserve-unknown-fields'] === undefined)
    out['x-kubernetes-preserve-unknown-fields'] = true;
  return out;
}

function mapValues<T, U>(o: Record<string, T>, f: (v: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}
