// Zod's issues in the wording the config has always used: "must be a mapping", "must be
// one of A, B (got "x")", "unknown field (expected one of: ...)". A schema that needs
// more (a hint, an example) carries its own message, which wins over these.

import type * as z from 'zod';

type Issue = z.core.$ZodRawIssue;

const EXPECTED: Record<string, string> = {
  object: 'must be a mapping',
  record: 'must be a mapping',
  array: 'must be a list',
  string: 'must be a non-empty string',
  boolean: 'must be true or false',
  number: 'must be a number',
  int: 'must be an integer',
};

/** The message for one issue; undefined leaves zod's own. */
export function issueMessage(iss: Issue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return EXPECTED[iss.expected] ?? `must be ${iss.expected}`;
    case 'invalid_value':
      return `must be one of ${iss.values.map(String).join(', ')} (got ${JSON.stringify(iss.input)})`;
    case 'unrecognized_keys': {
      const def = iss.inst?._zod.def as { shape?: Record<string, unknown> } | undefined;
      const keys = Object.keys(def?.shape ?? {});
      return `unknown field (expected one of: ${keys.join(', ')})`;
    }
    case 'too_small':
      if (iss.origin === 'string') return 'must be a non-empty string';
      if (iss.origin === 'array') return `must list at least ${String(iss.minimum)}`;
      return `must be at least ${String(iss.minimum)}`;
    case 'too_big':
      if (iss.origin === 'string') return `must be at most ${String(iss.maximum)} characters`;
      if (iss.origin === 'array') return `must list at most ${String(iss.maximum)}`;
      return `must be at most ${String(iss.maximum)}`;
    default:
      return undefined;
  }
}
