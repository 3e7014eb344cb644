import { stat } from 'node:fs/promises';

/**
 * What the files of a secret look like without opening them: device, inode, size and
 * change times of each (after symlinks, so a `..data` swap changes it). The periodic
 * resync re-reads a secret only when this changed, so 100,000 declared secrets cost
 * 200,000 stats every 30 s, not 400,000 reads. Any error gives undefined: read anyway.
 */
export async function fileFingerprint(paths: readonly string[]): Promise<string | undefined> {
  try {
    const parts: string[] = [];
    for (const p of paths) {
      const st = await stat(p, { bigint: true });
      parts.push(`${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
    }
    return parts.join('|');
  } catch {
    return undefined;
  }
}
