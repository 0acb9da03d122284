/**
 * A group commit's batch keeps its savepoint journals in memory
 * (src/store/sqlite/savepoint-journal.ts): `temp_store` is MEMORY while the
 * batch runs and back to the connection's own value after, and a write that
 * changed far more than the 64 KiB SQLite journals in memory by default
 * still rolls back alone. A real file in WAL mode, as the engine runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';

describe('sqlite group commit: savepoint journals in memory', () => {
  let dir: string;
  let db: Database.Database;
  let commit: GroupCommit<number[]>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'drover-journal-'));
    db = new Database(join(dir, 'x.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run('a'.repeat(200));
    })();
    commit = new GroupCommit<number[]>(db, { create: () => [], merge: (into, from) => void into.push(...from), committed: () => undefined });
  });

  afterEach(async () => {
    await commit.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tempStore = () => Number(db.pragma('temp_store', { simple: true }));
  // Rewrites every row: about 100 pages, far past the 64 KiB journalled in memory by default.
  const rewrite = (v: string) => db.prepare('UPDATE t SET v = ?').run(v.repeat(200)).changes;

  it('runs each batch with temp_store MEMORY and restores the connection’s value after', async () => {
    const before = tempStore();
    expect(before).not.toBe(2);
    const seen = await commit.submit(() => tempStore());
    expect(seen).toBe(2);
    expect(tempStore()).toBe(before);
  });

  it('rolls back a large failing write alone, keeping the large one before it', async () => {
    const results = await Promise.allSettled([
      commit.submit(() => rewrite('b')),
      commit.submit(() => {
        rewrite('c');
        throw new Error('refused');
      }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect(db.prepare('SELECT DISTINCT v FROM t').pluck().all()).toEqual(['b'.repeat(200)]);
  });
});
