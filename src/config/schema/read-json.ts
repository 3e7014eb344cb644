import type * as z from 'zod';

/**
 * JSON this program wrote and reads back (from disk or the API server): the value when it
 * parses and has the shape, else undefined. A damaged or foreign file is rebuilt, never
 * trusted through a cast.
 */
export function readPersisted<S extends z.ZodType>(schema: S, text: string | undefined): z.output<S> | undefined {
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = schema.safeParse(json);
  return result.success ? result.data : undefined;
}
