/**
 * Two WAL syncs out at once (src/store/sqlite/group-commit.ts `DeferredSync.slots`,
 * wal-sync.ts): a batch committed while a sync is out starts its own at once
 * instead of waiting for that one to return; whichever returns answers exactly
 * the batches committed before it began; a failure of either fails every
 * batch not yet answered and every write after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit, type DeferredSync } from '../../src/store/sqlite/group-commit.js';
import { walSync } from '../../src/store/sqlite/wal-sync.js';

/** A sync that returns only when the test says so; two may be out. */
class HeldSyncs implements DeferredSync {
  readonly slots = 2;
  calls: Array<{ resolve(): void; reject(error: unknown): void }> = [];
  constructor(private readonly db: Database.Database) {}
  defer(): void {
    this.db.pragma('synchronous = NORMAL');
  }
  restore(): void {
    this.db.pragma('synchronous = FULL');
  }
  sync(): Promise<void> {
    return new Promise((resolve, reject) => this.calls.push({ resolve, reject }));
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('sqlite: two WAL syncs out at once', () => {
  let dir: string;
  let db: Database.Database;
  let held: HeldSyncs;
  let commit: GroupCommit<number[]>;
  let durable: number[][];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'drover-two-syncs-'));
    db = new Database(join(dir, 'd.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (v INTEGER NOT NULL UNIQUE)');
    held = new HeldSyncs(db);
    durable = [];
    commit = new GroupCommit<number[]>(db, { create: () => [], merge: (into, from) => void into.push(...from), committed: () => {}, durable: (e) => void durable.push(e) }, held);
  });

  afterEach(async () => {
    for (const call of held.calls) call.resolve();
    await commit.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const insert = (v: number) =>
    commit.submit((own) => {
      db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
      own.push(v);
      return v;
    });
  const answered: number[] = [];
  const track = (p: Promise<number>) => p.then((v) => void answered.push(v));

  it('starts a batch its own sync while another is out; each sync answers only what committed before it began', async () => {
    answered.length = 0;
    const one = track(insert(1));
    await turn();
    const two = track(insert(2));
    await turn();
    // The second batch did not wait for the first sync to return.
    expect(held.calls).toHaveLength(2);
    // A third waits for a free slot (both are out).
    const three = track(insert(3));
    await turn();
    expect(held.calls).toHaveLength(2);
    // The first sync returns: only batch 1 began before it; 3 gets the freed slot.
    held.calls[0]!.resolve();
    await one;
    await turn();
    expect(answered).toEqual([1]);
    expect(held.calls).toHaveLength(3);
    // The third returns before the second: it began after batches 2 and 3, so it answers both.
    held.calls[2]!.resolve();
    await Promise.all([two, three]);
    expect(answered).toEqual([1, 2, 3]);
    expect(durable).toEqual([[1], [2], [3]]);
    expect(commit.whenDurable()).toBeNull();
    // The second returns last, with nothing left to answer.
    held.calls[1]!.resolve();
    await turn();
    expect(answered).toEqual([1, 2, 3]);
  });

  it('a failed sync fails every batch not yet answered, even one the other sync covers, and every write after', async () => {
    const one = insert(1);
    await turn();
    const two = insert(2);
    await turn();
    expect(held.calls).toHaveLength(2);
    held.calls[0]!.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(one).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(two).rejects.toMatchObject({ code: 'store_unavailable' });
    // The other sync's success afterwards answers nothing: what is on disk is unknown.
    held.calls[1]!.resolve();
    await turn();
    await expect(insert(3)).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(commit.whenDurable()).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(durable).toEqual([]);
  });

  it('the WAL sync takes two at once, each through a descriptor of its own', async () => {
    const path = join(dir, 'w.db');
    const wal = new Database(path);
    wal.pragma('journal_mode = WAL');
    wal.pragma('synchronous = FULL');
    wal.exec('CREATE TABLE t (v)');
    const sync = walSync(wal, path, false)!;
    try {
      expect(sync.slots).toBe(2);
      await expect(Promise.all([sync.sync(), sync.sync()])).resolves.toEqual([undefined, undefined]);
      // A third at once is a bug in the caller, refused rather than sharing a descriptor.
      const three = [sync.sync(), sync.sync(), sync.sync()];
      await expect(Promise.allSettled(three)).resolves.toContainEqual(expect.objectContaining({ status: 'rejected' }));
    } finally {
      sync.close();
      wal.close();
    }
  });
});
