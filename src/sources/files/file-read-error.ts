/**
 * Why a secret file could not be read, as a stable code for logs and tests:
 * NOT_REGULAR_FILE (a FIFO, device, socket or directory behind the path), TOO_LARGE
 * (over limits.maxSecretBytes), READ_TIMEOUT (past limits.fileReadTimeoutMs), ABORTED
 * (the source stopped), or the errno code (ENOENT, EACCES, EMFILE, ...).
 */
export type FileReadCode = 'NOT_REGULAR_FILE' | 'TOO_LARGE' | 'READ_TIMEOUT' | 'ABORTED' | (string & Record<never, never>);

export class FileReadError extends Error {
  constructor(
    readonly code: FileReadCode,
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'FileReadError';
  }
}

/** Errors that go away by themselves: the read is tried again later, never dropped. */
export function isTransient(code: string | undefined): boolean {
  return code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN' || code === 'READ_TIMEOUT' || code === 'EINTR';
}

/** The code of any error a read can end with. */
export function codeOf(err: unknown): string {
  if (err instanceof FileReadError) return err.code;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'READ_FAILED';
}
