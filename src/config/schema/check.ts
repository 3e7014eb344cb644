import * as z from 'zod';
import { ConfigError } from '../config-error.js';
import { issueMessage } from './issue-message.js';
import { EARLY } from './rules.js';

/**
 * The value as the schema's output type, or a ConfigError at the first problem's path
 * (`at` is where `value` sits: "issuance.resources[2]"). One problem at a time, as
 * kubectl reports a field.
 */
export function checkSchema<S extends z.ZodType>(schema: S, value: unknown, at: string): z.output<S> {
  const result = schema.safeParse(value, { error: issueMessage });
  if (result.success) return result.data;
  const issues = result.error.issues;
  // As a reader fixes a file: which kind of thing (presence rules), then typos (unknown fields), then values.
  const issue =
    issues.find((i) => i.code === 'custom' && i.params?.[EARLY] === true) ??
    issues.find((i) => i.code === 'unrecognized_keys') ??
    issues[0]!;
  const path = [...issue.path];
  // An unknown field is reported at the field itself.
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  throw new ConfigError(fieldPath(at, path), issue.message);
}

/** `at` followed by `.key` and `[index]` segments. */
export function fieldPath(at: string, path: readonly PropertyKey[]): string {
  let out = at;
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : `${out === '' ? '' : '.'}${String(seg)}`;
  return out === '' ? '(root)' : out;
}
