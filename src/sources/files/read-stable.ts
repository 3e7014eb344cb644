import { readFile } from 'node:fs/promises';

/**
 * Reads a set of files until two reads `settleMs` apart agree: a writer that replaces
 * the certificate and then the key is seen only once both are in place.
 */
export async function readStable(paths: readonly string[], settleMs: number, maxRounds = 10): Promise<Buffer[]> {
  let previous = await readAll(paths);
  for (let round = 0; round < maxRounds; round++) {
    await new Promise((r) => setTimeout(r, settleMs));
    const current = await readAll(paths);
    if (current.every((b, i) => b.equals(previous[i]!))) return current;
    previous = current;
  }
  return previous;
}

function readAll(paths: readonly string[]): Promise<Buffer[]> {
  return Promise.all(paths.map((p) => readFile(p)));
}
