// Field shapes the config and the issuance resources share.

import * as z from 'zod';

export const nonEmpty = z.string().min(1);

export const stringList = z.array(nonEmpty);

/** A string matching `re` (RE2-compatible, the CRDs carry it as `pattern`), with a message naming the value. */
export function matching(re: RegExp, message: (value: string) => string): z.ZodString {
  return z.string().regex(re, { error: (iss) => message(String(iss.input)) });
}

/** An integer within bounds, with the bounds in the message. */
export function intFrom(min: number, max: number): z.ZodInt {
  const error = `must be an integer from ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}

export const positiveInt = z.int({ error: 'must be a positive integer' }).min(1, { error: 'must be a positive integer' });

/** A cert-manager field accepted for compatibility with no effect here. */
export function ignored<S extends z.ZodType>(schema: S): z.ZodOptional<S> {
  return schema.optional().meta({ description: 'Accepted for cert-manager compatibility; no effect.' });
}

/** Any mapping, kept as it is. */
export const anyMapping = z.looseObject({});

/**
 * Fields named only so a rule can refuse them with a reason (an unsupported cert-manager
 * feature). Typed as cert-manager types them (a mapping by default), as CEL needs a type.
 */
export function namedFields<K extends string>(keys: readonly K[], schema: z.ZodType = anyMapping): Record<K, z.ZodOptional<z.ZodType>> {
  return Object.fromEntries(keys.map((k) => [k, schema.optional()])) as Record<K, z.ZodOptional<z.ZodType>>;
}
