/**
 * Name patterns for the local policy: exact names, or a trailing `*` matching any
 * suffix (`kubernetes://apps/*`). Deliberately no regular expressions: a policy file is
 * read by people during incidents.
 */
export function matchesNamePattern(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}
