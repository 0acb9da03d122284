/**
 * The SQLite engine writes each attempt row once, when the attempt ends
 * (migration 0009; PostgreSQL does the same): a lease writes none, the
 * running attempt is read from the job row. That every way an attempt ends
 * writes its whole row, both engines hold (test/store/conformance.ts); here,
 * what only SQLite has: the rows on disk, and a store from before the
 * migration whose jobs were running when it was upgraded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { expectIntactSqliteFile } from '../helpers/sqlite-file.js';
import type { AttemptRow } from '../../src/core/types.js';
import { toAttemptRow, type RawAttempt } from '../../src/store/sqlite/rows.js';
import { loadMigrations, migrateSqlite } from '../../src/store/sqlite/migrator.js';
import { openSqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'drover-attempts-once-'));
  dirs.push(dir);
  return join(dir, 'drover.db');
}

/** Attempt rows on disk, per job, read on a connection of their own. */
function rowsOnDisk(path: string): Map<string, AttemptRow[]> {
  const db = new Database(path, { readonly: true });
  try {
    const byJob = new Map<string, AttemptRow[]>();
    for (const raw of db.prepare('SELECT * FROM attempts ORDER BY job_id, attempt').all() as RawAttempt[]) {
      const row = toAttemptRow(raw);
      byJob.set(row.jobId, [...(byJob.get(row.jobId) ?? []), row]);
    }
    return byJob;
  } finally {
    db.close();
  }
}

/** A migrated engine on a scratch file, its clock the test's (`clock.now`), and one job of `h` leased by worker `w` at 1,000. */
async function oneLeased() {
  const path = scratch();
  const clock = { now: 1_000 };
  const engine = await openSqliteEngine({ path, clock: () => clock.now });
  await engine.migrate();
  await engine.enqueue([{ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: clock.now, maxAttempts: 3 }]);
  const [job] = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 30_000 });
  return { path, clock, engine, job };
}

describe('sqlite: each attempt row written once', () => {
  it('a lease writes no attempt row; its end writes the whole row', async () => {
    const { path, clock, engine, job } = await oneLeased();
    try {
      expect(await engine.getAttempts(job!.id)).toEqual([{ jobId: job!.id, attempt: 1, workerId: 'w', startedAt: 1_000, endedAt: null, outcome: 'running', error: null }]);
      expect(rowsOnDisk(path).size).toBe(0);
      clock.now = 1_250;
      expect((await engine.complete(job!.id, job!.leaseToken, null)).ok).toBe(true);
      const done = [{ jobId: job!.id, attempt: 1, workerId: 'w', startedAt: 1_000, endedAt: 1_250, outcome: 'succeeded', error: null }];
      expect(rowsOnDisk(path).get(job!.id)).toEqual(done);
      expect(await engine.getAttempts(job!.id)).toEqual(done);
    } finally {
      await engine.close();
    }
  });

  it("a suspend writes its attempt row with the lease's worker and start (the suspended job row has no worker)", async () => {
    const { path, clock, engine, job } = await oneLeased();
    try {
      clock.now = 1_100;
      const suspended = await engine.suspend(job!.id, job!.leaseToken, { step: 'nap', seq: 0, kind: 'sleep', startedAt: clock.now, wakeAt: clock.now + 1_000 });
      expect(suspended).toMatchObject({ ok: true, suspended: true, job: { workerId: null } });
      const row = [{ jobId: job!.id, attempt: 1, workerId: 'w', startedAt: 1_000, endedAt: 1_100, outcome: 'suspended', error: null }];
      expect(await engine.getAttempts(job!.id)).toEqual(row);
      expect(rowsOnDisk(path).get(job!.id)).toEqual(row);
    } finally {
      await engine.close();
    }
  });

  it('migrates a store from before with running attempts: each ends with one correct row', async () => {
    const path = scratch();
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    migrateSqlite(db, { migrations: loadMigrations().filter((m) => m.version < 9) });
    // As the engine before 0009 left them: each lease inserted a 'running' row, each end updated it.
    const job = db.prepare(`
      INSERT INTO jobs (handler, queue, state, payload, run_at, attempts, max_attempts, lease_seq, started_seq,
                        lease_token, lease_expires_at, worker_id, last_error, created_at, updated_at, finished_at)
      VALUES ('h', 'default', ?, '{}', 0, ?, 5, ?, ?, ?, ?, ?, ?, 0, ?, ?)`);
    const attempt = db.prepare('INSERT INTO attempts (job_id, attempt, worker_id, started_at, ended_at, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?)');
    // 1: its second attempt running since 1000 (a heartbeat moved updated_at since).
    job.run('running', 2, 2, 2, 'tok-1', 1e15, 'w-old', 'boom', 1_500, null);
    attempt.run(1, 1, 'w-a', 100, 200, 'failed', 'boom');
    attempt.run(1, 2, 'w-old', 1_000, null, 'running', null);
    // 2: running since 2000, its lease expired at 2100.
    job.run('running', 1, 1, 1, 'tok-2', 2_100, 'w-old', null, 2_000, null);
    attempt.run(2, 1, 'w-old', 2_000, null, 'running', null);
    // 3: running since 3000, to be cancelled.
    job.run('running', 1, 1, 1, 'tok-3', 1e15, 'w-old', null, 3_000, null);
    attempt.run(3, 1, 'w-old', 3_000, null, 'running', null);
    // 4: finished before the upgrade.
    job.run('succeeded', 1, 1, 1, null, null, 'w-a', null, 20, 20);
    attempt.run(4, 1, 'w-a', 10, 20, 'succeeded', null);
    db.close();
    const before = rowsOnDisk(path);

    let now = 5_000;
    const engine = await openSqliteEngine({ path, clock: () => now });
    try {
      expect((await engine.migrate()).applied).toEqual([9]);
      // Reads answer as before the upgrade, running attempts included.
      for (const id of ['1', '2', '3', '4']) expect(await engine.getAttempts(id)).toEqual(before.get(id));

      // Each way the running attempts end writes one row, with the start they had.
      expect((await engine.complete('1', 'tok-1', 'ok')).ok).toBe(true);
      expect((await engine.reapExpired({ poisonAfter: 5 })).map((j) => j.id)).toEqual(['2']);
      now = 5_010;
      expect(await engine.cancel('3')).toMatchObject({ state: 'cancelled' });
      const ended = (jobId: string, attempt: number, startedAt: number, endedAt: number, outcome: string) => ({
        jobId,
        attempt,
        workerId: 'w-old',
        startedAt,
        endedAt,
        outcome,
        error: null,
      });
      const expected = new Map<string, AttemptRow[]>([
        ['1', [before.get('1')![0]!, ended('1', 2, 1_000, 5_000, 'succeeded') as AttemptRow]],
        ['2', [ended('2', 1, 2_000, 5_000, 'lease_expired') as AttemptRow]],
        ['3', [ended('3', 1, 3_000, 5_010, 'cancelled') as AttemptRow]],
        ['4', before.get('4')!],
      ]);
      for (const [id, rows] of expected) expect(await engine.getAttempts(id)).toEqual(rows);
      expect(rowsOnDisk(path)).toEqual(expected);

      // A lease after the upgrade: the same one-row path, on the job leased again.
      const [again] = await engine.lease({ workerId: 'w-new', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 30_000 });
      expect(again!.id).toBe('2');
      expect((await engine.getAttempts('2')).at(-1)).toEqual({ jobId: '2', attempt: 2, workerId: 'w-new', startedAt: 5_010, endedAt: null, outcome: 'running', error: null });
      expect(rowsOnDisk(path).get('2')).toHaveLength(1);
    } finally {
      await engine.close();
    }
    expectIntactSqliteFile(path);
  });
});
