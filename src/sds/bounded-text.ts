/**
 * Client-supplied text kept beyond one request (NACK messages, node ids) is cut to a
 * bound and copied: V8's `slice` of a long string returns a view that keeps the whole
 * original alive, so a 4 MB error_detail cut to 1 KB with `slice` alone still costs 4 MB.
 */
export function boundedCopy(s: string, maxChars: number): string {
  if (s.length <= maxChars) return s;
  // Through a Buffer: a fresh flat string with no reference to the original.
  return `${Buffer.from(s.slice(0, maxChars), 'utf8').toString('utf8')}… [${s.length - maxChars} more characters]`;
}
