/**
 * `synchronous=FULL` durability with the fsync off the event loop
 * (group-commit.ts `DeferredSync`).
 *
 * In WAL mode a FULL commit appends its frames to the WAL and then fsyncs the
 * WAL; better-sqlite3 is synchronous, so the event loop stands still for the
 * whole fsync, once per group commit (measured on the bench VM: 1–3 ms each,
 * a third of a no-op drain's wall time). Here each batch commits with
 * `synchronous = NORMAL` (the same frames written, no fsync) and the WAL is
 * then `fdatasync`ed on libuv's thread pool; the group commit answers nobody
 * before that returns. A sync covers every frame written before it, so it is
 * the same guarantee: what was acknowledged is on disk. NORMAL differs from
 * FULL only in that commit fsync: checkpoints still sync the WAL before
 * copying it and the database after, and a reused WAL's header is synced.
 *
 * The WAL is opened by name for each sync, so a sync always reaches the file
 * SQLite writes now. Its directory is synced once too, as SQLite does for a
 * WAL it created (its entry must survive a power cut for the frames to).
 */
import { close, fdatasync, fsync, open } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import type { DeferredSync } from './group-commit.js';

function syncFile(path: string, data: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (openError, fd) => {
      if (openError) return reject(openError);
      (data ? fdatasync : fsync)(fd, (syncError) => {
        close(fd, (closeError) => {
          const error = syncError ?? closeError;
          if (error) reject(error);
          else resolve();
        });
      });
    });
  });
}

/**
 * The deferred sync of the database file `path` on `db`, or null when there
 * is nothing to defer: an in-memory database, or a connection below FULL; or
 * a `file:` URI, whose WAL's name this does not work out (its commits keep
 * their own fsync).
 */
export function walSync(db: Database.Database, path: string, inMemory: boolean): DeferredSync | null {
  const level = Number(db.pragma('synchronous', { simple: true }));
  if (inMemory || path.startsWith('file:') || level < 2) return null;
  const normal = db.prepare('PRAGMA synchronous = NORMAL');
  const restore = db.prepare(`PRAGMA synchronous = ${level}`);
  const wal = `${path}-wal`;
  let directorySynced = false;
  return {
    defer: () => void normal.run(),
    restore: () => void restore.run(),
    async sync() {
      await syncFile(wal, true);
      if (!directorySynced) {
        await syncFile(dirname(wal), false);
        directorySynced = true;
      }
    },
  };
}
