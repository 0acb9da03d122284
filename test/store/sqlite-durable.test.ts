/**
 * Durable execution on the SQLite engine: the shared durable conformance
 * suite on a real file per test, and the migration that adds it to a store
 * holding jobs from before.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { expectIntactSqliteFile } from '../helpers/sqlite-file.js';
import { loadMigrations, migrateSqlite } from '../../src/store/sqlite/migrator.js';
import { openSqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { describeDurableConformance } from './durable-conformance.js';

describeDurableConformance('sqlite', async (clock) => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-durable-'));
  const engine = await openSqliteEngine({ path: join(dir, 'drover.db'), clock });
  return {
    engine,
    cleanup: async () => {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite migration 0006 (durable)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps jobs, attempts and the id high-water mark of a store from before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-durable-mig-'));
    dirs.push(dir);
    const path = join(dir, 'drover.db');
    const before = loadMigrations().filter((m) => m.version < 6);
    const db = new Database(path);
    db.pragma('foreign_keys = ON');
    migrateSqlite(db, { migrations: before });
    const insert = db.prepare(
      "INSERT INTO jobs (handler, queue, state, payload, run_at, max_attempts, created_at, updated_at, lease_seq) VALUES ('h', 'default', ?, '{}', 1, 3, 1, 1, 1)",
    );
    for (const state of ['queued', 'running', 'succeeded']) insert.run(state);
    db.prepare("INSERT INTO attempts (job_id, attempt, worker_id, started_at, outcome) VALUES (2, 1, 'w', 1, 'running')").run();
    db.prepare('DELETE FROM jobs WHERE id = 3').run(); // pruned: id 3 must never be handed out again
    db.close();

    const engine = await openSqliteEngine({ path });
    try {
      expect((await engine.migrate()).applied).toEqual(loadMigrations().filter((m) => m.version >= 6).map((m) => m.version));
      expect((await engine.getJob('1'))!.state).toBe('queued');
      expect(await engine.getAttempts('2')).toHaveLength(1);
      const [next] = await engine.enqueue([{ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: 0, maxAttempts: 1 }]);
      expect(next!.job.id).toBe('4');
      // The attempts cascade still points at jobs.
      await engine.cancel('2');
      expect(await engine.prune({ finishedBefore: Date.now() + 1000, deadBefore: 0, eventsBefore: 0, batchSize: 10 })).toMatchObject({ jobs: 1 });
      expect(await engine.getAttempts('2')).toEqual([]);
    } finally {
      await engine.close();
    }
    expectIntactSqliteFile(path);
  });
});
