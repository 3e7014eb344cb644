/** Reads one file; the file source passes its bounded, throttled reader. */
export type FileReader = (path: string) => Promise<Buffer>;

/**
 * Reads a set of files until two reads `settleMs` apart agree: a writer that replaces
 * the certificate and then the key is seen only once both are in place.
 */
export async function readStable(paths: readonly string[], settleMs: number, read: FileReader, maxRounds = 10): Promise<Buffer[]> {
  let previous = await readAll(paths, read);
  for (let round = 0; round < maxRounds; round++) {
    await new Promise((r) => setTimeout(r, settleMs));
    const current = await readAll(paths, read);
    if (current.every((b, i) => b.equals(previous[i]!))) return current;
    previous = current;
  }
  return previous;
}

/** One after the other: a failure stops the set before the next file is opened. */
async function readAll(paths: readonly string[], read: FileReader): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const p of paths) out.push(await read(p));
  return out;
}
