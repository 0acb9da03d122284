/**
 * Two WAL syncs out at once (src/store/sqlite/group-commit.ts `DeferredSync.slots`,
 * wal-sync.ts): an enqueue's batch committed while a completion's sync is out
 * starts its own at once instead of waiting for that one to return; other
 * batches wait as before; whichever sync returns answers exactly the batches
 * committed before it began; a failure of either fails every batch not yet
 * answered and every write after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';
import { walSync } from '../../src/store/sqlite/wal-sync.js';
import { heldGroupCommit, turn, type HeldGroupCommit, type HeldSync } from '../helpers/held-sync.js';

describe('sqlite: two WAL syncs out at once', () => {
  let fixture: HeldGroupCommit;
  let held: HeldSync;
  let commit: GroupCommit<number[]>;
  let durable: number[][];

  beforeEach(() => {
    fixture = heldGroupCommit('drover-two-syncs-', 2);
    ({ held, commit, durable } = fixture);
  });

  afterEach(() => fixture.close());

  const insert = (v: number) => fixture.insert(v);
  /** A write that feeds nothing (a completion's): its sync may be joined by an enqueue's. */
  const complete = (v: number) => fixture.insert(v, { feeds: false, atCommit: false });
  const answered: number[] = [];
  const track = (p: Promise<number>) => p.then((v) => void answered.push(v));

  it("gives an enqueue's batch a sync of its own while a completion's is out; each sync answers what committed before it began", async () => {
    answered.length = 0;
    const one = track(complete(1));
    await turn();
    const two = track(insert(2));
    await turn();
    // The enqueue's batch did not wait for the completion's sync to return.
    expect(held.calls).toHaveLength(2);
    // A third batch waits: both slots are out, and the second covers an enqueue.
    const three = track(insert(3));
    await turn();
    expect(held.calls).toHaveLength(2);
    // The second returns first: it began after batches 1 and 2 committed, so it answers both.
    held.calls[1]!.resolve();
    await Promise.all([one, two]);
    expect(answered).toEqual([1, 2]);
    await turn();
    // Batch 3 gets the freed slot beside the completion's sync, still out.
    expect(held.calls).toHaveLength(3);
    held.calls[0]!.resolve();
    await turn();
    expect(answered).toEqual([1, 2]);
    held.calls[2]!.resolve();
    await three;
    expect(answered).toEqual([1, 2, 3]);
    expect(durable).toEqual([[1], [2], [3]]);
    expect(commit.whenDurable()).toBeNull();
  });

  it("any other batch waits for the sync out: an enqueue's behind an enqueue's, a completion's behind a completion's", async () => {
    answered.length = 0;
    const one = track(insert(1));
    await turn();
    const two = track(insert(2));
    const three = track(complete(3));
    await turn();
    expect(held.calls).toHaveLength(1);
    held.calls[0]!.resolve();
    await one;
    await turn();
    // One sync for both batches committed while the first was out.
    expect(held.calls).toHaveLength(2);
    held.calls[1]!.resolve();
    await Promise.all([two, three]);
    const four = track(complete(4));
    await turn();
    const five = track(complete(5));
    await turn();
    expect(held.calls).toHaveLength(3);
    held.calls[2]!.resolve();
    await four;
    await turn();
    expect(held.calls).toHaveLength(4);
    held.calls[3]!.resolve();
    await five;
    expect(answered).toEqual([1, 2, 3, 4, 5]);
  });

  it('a failed sync fails every batch not yet answered, even one the other sync covers, and every write after', async () => {
    const one = complete(1);
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
    const dir = mkdtempSync(join(tmpdir(), 'drover-two-syncs-wal-'));
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
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
