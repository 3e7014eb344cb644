// Rules across the fields of one mapping ("set exactly one of", "shorter than the
// duration"), declared once: checked here by zod, and carried into the CRDs as CEL
// `x-kubernetes-validations`, so the API server refuses the same objects at admission.

import * as z from 'zod';

/** One entry of a CRD's x-kubernetes-validations. */
export interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
}

export interface Rule<T> {
  /** The field the message is about (relative to the mapping); the mapping itself when absent. */
  field?: string;
  message: string;
  /** The same rule in CEL, for admission. */
  cel: string;
  holds(value: T): boolean;
}

type Mapping = Record<string, unknown>;

/**
 * A rule on which fields are present. It is checked before the fields inside, as a
 * reader expects "set exactly one of selfSigned, ca, acme" before any complaint about
 * what is inside one of them.
 */
export interface PresenceRule {
  field?: string;
  message: string;
  cel: string;
  holds(present: (key: string) => boolean): boolean;
}

const count = (keys: readonly string[]) => keys.map((k) => `(has(self.${k}) ? 1 : 0)`).join(' + ');

export function exactlyOne(keys: readonly string[], message = `set exactly one of ${keys.join(', ')}`): PresenceRule {
  return { message, cel: `${count(keys)} == 1`, holds: (has) => keys.filter(has).length === 1 };
}

export function atMostOne(keys: readonly string[], message = `set at most one of ${keys.join(' and ')}`): PresenceRule {
  return { message, cel: `${count(keys)} <= 1`, holds: (has) => keys.filter(has).length <= 1 };
}

/** A field the shape names (so a message can say why) that must not be set. */
export function notSet(key: string, message: string): PresenceRule {
  return { field: key, message, cel: `!has(self.${key})`, holds: (has) => !has(key) };
}

/** Issues from presence rules are reported before any other: see PresenceRule. */
export const EARLY = 'presence';

/** The mapping schema with its rules attached, for both zod and the CRDs. */
export function withRules<S extends z.ZodObject>(
  schema: S,
  presence: readonly PresenceRule[],
  rules: readonly Rule<z.output<S>>[] = [],
): S {
  const validations: CelValidation[] = [...presence, ...rules].map((r) => ({
    rule: r.cel,
    message: r.message,
    ...(r.field ? { fieldPath: `.${r.field}` } : {}),
  }));
  return schema
    .superRefine(
      (value, ctx) => {
        if (typeof value !== 'object' || value === null) return;
        const has = (k: string) => (value as Mapping)[k] !== undefined;
        for (const r of presence) {
          if (!r.holds(has))
            ctx.addIssue({ code: 'custom', message: r.message, path: r.field ? [r.field] : [], params: { [EARLY]: true } });
        }
      },
      // Run even when a field inside failed: these come first.
      { when: () => true },
    )
    .superRefine((value, ctx) => {
      for (const r of rules) if (!r.holds(value)) ctx.addIssue({ code: 'custom', message: r.message, path: r.field ? [r.field] : [] });
    })
    .meta({ 'x-kubernetes-validations': validations });
}
