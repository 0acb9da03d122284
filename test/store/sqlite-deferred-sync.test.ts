/**
 * Group commits made durable off the event loop (src/store/sqlite/group-commit.ts
 * `DeferredSync`, wal-sync.ts): nobody is answered, woken or shown a write
 * before the sync covering its batch has returned; a failed sync fails its
 * batches and every write after it.
 */
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';
import { openSqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { walSync } from '../../src/store/sqlite/wal-sync.js';
import { HeldSync, heldGroupCommit, turn, type HeldGroupCommit } from '../helpers/held-sync.js';

describe('sqlite: group commit with a deferred sync', () => {
  let fixture: HeldGroupCommit;
  let db: Database.Database;
  let held: HeldSync;
  let commit: GroupCommit<number[]>;
  let committed: number[][];
  let durable: number[][];

  beforeEach(() => {
    fixture = heldGroupCommit('drover-defer-');
    ({ db, held, commit, committed, durable } = fixture);
  });

  afterEach(() => fixture.close());

  const insert = (v: number) => fixture.insert(v);

  it('answers a batch only once its sync returned, and its durable effects only then', async () => {
    const answered: number[] = [];
    const first = insert(1).then((v) => answered.push(v));
    await turn();
    expect(held.calls).toHaveLength(1);
    // Committed (the writes that follow see it) but not answered: its sync is out.
    expect(committed).toEqual([[1]]);
    expect(durable).toEqual([]);
    expect(answered).toEqual([]);
    expect(commit.whenDurable()).not.toBeNull();
    // The COMMIT ran at NORMAL (no fsync of its own), the connection is back at FULL.
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    held.calls[0]!.resolve();
    await first;
    expect(answered).toEqual([1]);
    expect(durable).toEqual([[1]]);
    expect(commit.whenDurable()).toBeNull();
  });

  it('commits the next batch while a sync is out, and syncs it after (one sync at a time)', async () => {
    const one = insert(1);
    await turn();
    const two = insert(2);
    await turn();
    expect(committed).toEqual([[1], [2]]);
    expect(held.calls).toHaveLength(1);
    const visible = commit.whenDurable()!;
    let seen = false;
    void visible.then(() => (seen = true));
    held.calls[0]!.resolve();
    expect(await one).toBe(1);
    await turn();
    // The second batch waits for a sync that started after it committed.
    expect(held.calls).toHaveLength(2);
    expect(seen).toBe(false);
    held.calls[1]!.resolve();
    expect(await two).toBe(2);
    await visible;
    expect(durable).toEqual([[1], [2]]);
  });

  it("answers an op that failed in its savepoint at once (it wrote nothing), the others after the sync", async () => {
    const ok = insert(1);
    const failed = commit.submit(() => {
      throw new Error('refused');
    });
    await expect(failed).rejects.toThrow('refused');
    held.calls[0]!.resolve();
    expect(await ok).toBe(1);
  });

  it('fails the batches of a failed sync, those committed meanwhile, and every write and read after', async () => {
    const one = insert(1);
    await turn();
    const two = insert(2);
    await turn();
    const read = commit.whenDurable()!;
    held.calls[0]!.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(one).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(two).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(read).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(insert(3)).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(commit.whenDurable()).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(durable).toEqual([]);
  });

  const AT_COMMIT = { feeds: false, atCommit: true };
  const PLAIN = { feeds: false, atCommit: false };

  it('answers an `atCommit` write once committed, the others of its batch once synced', async () => {
    const order: string[] = [];
    const early = commit.submit((own) => {
      db.prepare('INSERT INTO t (v) VALUES (?)').run(7);
      own.push(7);
      return 'early';
    }, AT_COMMIT);
    const late = insert(8);
    void early.then((v) => order.push(v));
    void late.then((v) => order.push(String(v)));
    await turn();
    await early;
    expect(order).toEqual(['early']);
    // Its effects still wait for the sync, and so do reads.
    expect(durable).toEqual([]);
    expect(commit.whenDurable()).not.toBeNull();
    held.calls[0]!.resolve();
    await late;
    expect(order).toEqual(['early', '8']);
    expect(durable).toEqual([[7, 8]]);
  });

  it('answers an `atCommit` write after the sync when a feeding write before it is unsynced, in its batch or an earlier one', async () => {
    const order: string[] = [];
    const take = (label: string) => commit.submit(() => label, AT_COMMIT).then((v) => void order.push(v));
    // Same batch: a feeding write (the default mode: an enqueue) before it, then one that feeds nothing.
    const fed = insert(1).then((v) => void order.push(`insert ${v}`));
    const afterFeed = take('lease after insert');
    await turn();
    expect(order).toEqual([]);
    // The next batch, while the first is unsynced: still behind the feeding write.
    const nextBatch = take('lease in the next batch');
    await turn();
    expect(order).toEqual([]);
    held.calls[0]!.resolve();
    await Promise.all([fed, afterFeed]);
    expect(order).toEqual(['insert 1', 'lease after insert']);
    await turn();
    held.calls[1]!.resolve();
    await nextBatch;
    // Nothing feeding is unsynced any more: answered at commit, before its own sync.
    const plain = commit.submit(() => 'completion', PLAIN).then((v) => void order.push(v));
    const free = take('lease with nothing feeding unsynced');
    await turn();
    await free;
    expect(order).toEqual(['insert 1', 'lease after insert', 'lease in the next batch', 'lease with nothing feeding unsynced']);
    held.calls[2]!.resolve();
    await plain;
    expect(order.at(-1)).toBe('completion');
  });

  it('close waits for the sync of what was committed', async () => {
    const one = insert(1);
    await turn();
    let closed = false;
    const closing = commit.close().then(() => (closed = true));
    await turn();
    expect(closed).toBe(false);
    held.calls[0]!.resolve();
    await closing;
    expect(await one).toBe(1);
  });

  it('syncs on the event loop a batch that answered nobody early with nothing else out, on the pool otherwise', async () => {
    let inline = 0;
    let failNext: Error | null = null;
    const both = Object.assign(new HeldSync(db), {
      syncNow() {
        inline++;
        if (failNext) throw failNext;
      },
    });
    const c = new GroupCommit<number[]>(db, { create: () => [], merge: (into, from) => void into.push(...from), committed: () => {} }, both);
    const put = (v: number, mode?: { feeds: boolean; atCommit: boolean }) =>
      c.submit(() => {
        db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
        return v;
      }, mode);
    try {
      // Alone and answered by no one early: synced here, answered without the pool.
      expect(await put(1)).toBe(1);
      expect([inline, both.calls.length]).toEqual([1, 0]);
      expect(c.whenDurable()).toBeNull();
      // A write answered at commit: the pool syncs its batch while its jobs run.
      expect(await put(2, AT_COMMIT_MODE)).toBe(2);
      expect([inline, both.calls.length]).toEqual([1, 1]);
      // While that sync is out, the next batch waits for the pool's next sync, not the event loop.
      const third = put(3);
      await turn();
      expect([inline, both.calls.length]).toEqual([1, 1]);
      both.calls[0]!.resolve();
      await turn();
      expect(both.calls).toHaveLength(2);
      both.calls[1]!.resolve();
      expect(await third).toBe(3);
      // A failed sync on the event loop fails its batch and every write after, as on the pool.
      failNext = new Error('EIO');
      await expect(put(4)).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(put(5)).rejects.toMatchObject({ code: 'store_unavailable' });
    } finally {
      for (const call of both.calls) call.resolve();
      await c.close();
    }
  });
});

const AT_COMMIT_MODE = { feeds: false, atCommit: true };

describe('sqlite: the WAL sync', () => {
  it('is used for a file at FULL, not for NORMAL, a file: URI or memory; it syncs the WAL that exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-walsync-'));
    try {
      const path = join(dir, 'd.db');
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec('CREATE TABLE t (v)');
      const sync = walSync(db, path, false)!;
      expect(sync).not.toBeNull();
      await expect(sync.sync()).resolves.toBeUndefined();
      expect(walSync(db, `file:${path}`, false)).toBeNull();
      expect(walSync(db, ':memory:', true)).toBeNull();
      db.pragma('synchronous = NORMAL');
      expect(walSync(db, path, false)).toBeNull();
      db.close();
      sync.close();
      // A WAL that is not there (closed: SQLite removed it) is a failure, never a silent success.
      const other = new Database(join(dir, 'other.db'));
      other.pragma('synchronous = FULL');
      const late = walSync(other, join(dir, 'gone.db'), false)!;
      await expect(late.sync()).rejects.toMatchObject({ code: 'ENOENT' });
      other.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an engine whose WAL cannot be synced refuses every write and read after, and is not ready', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-walsync-'));
    const path = join(dir, 'drover.db');
    const engine = await openSqliteEngine({ path });
    const job = { handler: 'h', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3 };
    try {
      // migrate() writes outside the group commit: no sync has opened the WAL yet.
      await engine.migrate();
      // SQLite keeps writing to the unlinked file; the first sync, which opens the WAL by name, fails.
      unlinkSync(`${path}-wal`);
      await expect(engine.enqueue([job])).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(engine.enqueue([job])).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(engine.getJob('1')).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(engine.ping()).rejects.toMatchObject({ code: 'store_unavailable' });
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the engine's reads wait for the sync of the writes before them; its settings still say FULL", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-walsync-'));
    const engine = await openSqliteEngine({ path: join(dir, 'drover.db') });
    try {
      await engine.migrate();
      expect(engine.settings().synchronous).toBe('FULL');
      const [enqueued] = await engine.enqueue([{ handler: 'h', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3 }]);
      const job = enqueued!.job;
      const [leased] = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 30_000 });
      // Both in one turn: the read is asked while the completion is committed but not yet synced.
      const done = engine.complete(leased!.id, leased!.leaseToken, 'r');
      await turn();
      const order: string[] = [];
      await Promise.all([done.then(() => order.push('complete')), engine.getJob(job.id).then((row) => order.push(`read ${row?.state}`))]);
      expect(order).toEqual(['complete', 'read succeeded']);
      await expect(engine.ping()).resolves.toBeUndefined();
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('answers a lease marked inProcess at commit, before the sync its batch shares with a completion; any other lease after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-walsync-'));
    const engine = await openSqliteEngine({ path: join(dir, 'drover.db') });
    const job = { handler: 'h', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3 };
    try {
      await engine.migrate();
      // Synced before the batch under test, so nothing feeding is unsynced when the lease commits.
      await engine.enqueue([job, job, job]);
      const order = async (inProcess: boolean | undefined) => {
        const [running] = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 30_000 });
        const seen: string[] = [];
        // One batch: the completion first, then the lease.
        const done = engine.complete(running!.id, running!.leaseToken, 'r').then(() => void seen.push('complete'));
        const leased = engine.lease({ workerId: 'w', ...(inProcess === undefined ? {} : { inProcess }), handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 30_000 }).then(() => void seen.push('lease'));
        await Promise.all([done, leased]);
        return seen;
      };
      expect(await order(true)).toEqual(['lease', 'complete']);
      expect(await order(undefined)).toEqual(['complete', 'lease']);
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
