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
 * the same guarantee: what was acknowledged is on disk. A batch that answered
 * nobody early (group-commit.ts `syncNow`) is synced on the event loop
 * instead, as the FULL commit did: with no jobs to run meanwhile, the pool's
 * hop only delayed its callers (7–8 % fewer single enqueues, measured).
 * NORMAL differs from
 * FULL only in that commit fsync: checkpoints still sync the WAL before
 * copying it and the database after, and a reused WAL's header is synced.
 *
 * The WAL is opened once, at the first sync (SQLite keeps the same file for
 * as long as its connection is open), and synced through that descriptor, as
 * SQLite syncs its own. Twice, in fact: two syncs may be out at once
 * (`SYNC_SLOTS`, group-commit.ts says why), each through its own descriptor,
 * because the kernel reports a write error once per open file: a sync sharing
 * one with another could return success for frames whose write failed, the
 * other having taken the error. Both are opened together, before any sync. Looking the name up at every sync, to catch a WAL
 * replaced under the store, cost a thread-pool round trip per batch (~70 µs
 * of CPU, measured with bench/store-micro.mjs) for a case FULL does not
 * catch either. Its directory is synced once too, as SQLite does for a WAL it
 * created (its entry must survive a power cut for the frames to).
 */
import { close, closeSync, fdatasync, fdatasyncSync, fsync, fsyncSync, open, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import type { DeferredSync } from './group-commit.js';

const call = <T>(fn: (done: (error: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value))));

const openFile = (path: string) => call<number>((done) => open(path, 'r', done));
const dataSync = (fd: number) => call<void>((done) => fdatasync(fd, (error) => done(error, undefined)));

async function syncDirectory(path: string): Promise<void> {
  const fd = await openFile(path);
  try {
    await call<void>((done) => fsync(fd, (error) => done(error, undefined)));
  } finally {
    close(fd, () => undefined);
  }
}

/** Syncs out at once, a WAL descriptor each (two: a third only splits a drain's syncs further). */
const SYNC_SLOTS = 2;

/** A `DeferredSync` that the engine closes with its connection. */
export interface WalSync extends DeferredSync {
  close(): void;
}

/**
 * The deferred sync of the database file `path` on `db`, or null when there
 * is nothing to defer: an in-memory database, or a connection below FULL; or
 * a `file:` URI, whose WAL's name this does not work out (its commits keep
 * their own fsync).
 */
export function walSync(db: Database.Database, path: string, inMemory: boolean): WalSync | null {
  const level = Number(db.pragma('synchronous', { simple: true }));
  if (inMemory || path.startsWith('file:') || level < 2) return null;
  const normal = db.prepare('PRAGMA synchronous = NORMAL');
  const restore = db.prepare(`PRAGMA synchronous = ${level}`);
  const wal = `${path}-wal`;
  let closed = false;
  let directorySynced = false;
  // Opened once, at the first sync (the WAL exists once something was committed); a one-off open on the event loop.
  let fds: number[] = [];
  const busy = Array.from({ length: SYNC_SLOTS }, () => false);
  const walFds = (): number[] => {
    if (closed) throw new Error('the store is closed');
    if (fds.length === 0) fds = busy.map(() => openSync(wal, 'r'));
    return fds;
  };
  return {
    slots: SYNC_SLOTS,
    defer: () => void normal.run(),
    restore: () => void restore.run(),
    async sync() {
      const all = walFds();
      // The group commit keeps at most SYNC_SLOTS out, so one is free.
      const slot = busy.indexOf(false);
      if (slot === -1) throw new Error(`more than ${SYNC_SLOTS} WAL syncs out at once`);
      busy[slot] = true;
      try {
        await dataSync(all[slot]!);
      } finally {
        busy[slot] = false;
      }
      if (!directorySynced) {
        await syncDirectory(dirname(wal));
        directorySynced = true;
      }
    },
    syncNow() {
      // Only with no sync out (group-commit.ts).
      fdatasyncSync(walFds()[0]!);
      if (!directorySynced) {
        const dir = openSync(dirname(wal), 'r');
        try {
          fsyncSync(dir);
        } finally {
          closeSync(dir);
        }
        directorySynced = true;
      }
    },
    close() {
      closed = true;
      // After the group commit's close, which waits for every sync out (engine-core.ts close).
      for (const fd of fds) closeSync(fd);
      fds = [];
    },
  };
}
