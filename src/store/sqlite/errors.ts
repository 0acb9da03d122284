/**
 * SQLite's own failures, told apart from an operation's (a full queue, a bad
 * id): the store itself could not write. Out of disk space becomes the coded
 * `store_full` (507 with Retry-After: space freed, the node carries on by
 * itself); a write lock held too long by another connection (a backup tool,
 * an operator's sqlite3 shell) becomes `store_unavailable` (503). Both are
 * temporary, so outcome writes retry them (settle-queue.ts).
 */
import { DroverError } from '../../core/errors.js';

/** Seconds a client is told to wait after a disk-full refusal. */
export const STORE_FULL_RETRY_AFTER_S = 5;

/** better-sqlite3's extended result code (`SQLITE_FULL`, `SQLITE_BUSY_SNAPSHOT`, ...), of the error or its cause. */
export function sqliteCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) return code;
  }
  return undefined;
}

export function isDiskFull(error: unknown): boolean {
  return sqliteCode(error) === 'SQLITE_FULL';
}

/** The store could not write for now (space, locks, I/O); the same write may succeed later. */
export function isTransientStoreError(error: unknown): boolean {
  const code = sqliteCode(error);
  return code !== undefined && /^SQLITE_(FULL|BUSY|LOCKED|IOERR)/.test(code);
}

/** Map a store failure onto the coded error the API answers with; anything else passes through. */
export function toStoreError(error: unknown, path: string): unknown {
  if (error instanceof DroverError) return error;
  const code = sqliteCode(error);
  if (code === 'SQLITE_FULL') {
    return new DroverError('store_full', `the store ${path} is out of disk space (SQLITE_FULL); nothing accepted was lost. Free space on its filesystem: the node recovers by itself`, {
      cause: error,
      retryAfterSeconds: STORE_FULL_RETRY_AFTER_S,
    });
  }
  if (code !== undefined && /^SQLITE_(BUSY|LOCKED)/.test(code)) {
    return new DroverError('store_unavailable', `the store ${path} is locked by another connection (${code}); retry shortly`, { cause: error, retryAfterSeconds: 1 });
  }
  return error;
}
