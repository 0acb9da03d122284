/**
 * SQLite: a job's outcome whose write fails because the store cannot write
 * for now is retried with backoff (as the PostgreSQL engine does), so it
 * lands once the store comes back. The fault is real: another connection
 * holds the write lock (`BEGIN IMMEDIATE`), as a backup tool or an
 * operator's sqlite3 shell would, past the engine's busy timeout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { waitFor } from '../helpers/wait-for.js';

let dir: string;
let engine: SqliteEngine;
let locker: Database.Database | null = null;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'drover-outcome-retry-'));
  // A short busy timeout: each write attempt under the lock waits this long (synchronously) before SQLITE_BUSY.
  engine = await openSqliteEngine({ path: join(dir, 'drover.db'), busyTimeoutMs: 100 });
  await engine.migrate();
});

afterEach(async () => {
  if (locker?.inTransaction) locker.exec('ROLLBACK');
  locker?.close();
  locker = null;
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

async function runningJob() {
  await engine.enqueue([{ handler: 'h', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3 }]);
  const [job] = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
  expect((await engine.start(job!.id, job!.leaseToken)).ok).toBe(true);
  return job!;
}

function holdWriteLock(): void {
  locker = new Database(join(dir, 'drover.db'));
  locker.exec('BEGIN IMMEDIATE');
}

describe('sqlite: outcome writes retried through a temporary store fault', () => {
  it('a completion that meets a held write lock lands once the lock is released', { timeout: 20_000 }, async () => {
    const job = await runningJob();
    holdWriteLock();
    const completing = engine.complete(job.id, job.leaseToken, { ok: 1 });
    // The fault really happened: the first tries failed and the write is now being retried.
    await waitFor(() => engine.space.retrying === 1, { timeoutMs: 10_000, message: 'the completion is being retried' });
    expect(engine.stats.failedCommits).toBeGreaterThan(0);
    locker!.exec('ROLLBACK');

    expect(await completing).toMatchObject({ ok: true });
    expect(await engine.getJob(job.id)).toMatchObject({ state: 'succeeded', result: { ok: 1 } });
    const attempts = await engine.getAttempts(job.id);
    expect(attempts.map((a) => a.outcome)).toEqual(['succeeded']);
    expect(engine.space.retrying).toBe(0);
    // Landed once: the fence refuses a second write of the same outcome.
    expect(await engine.complete(job.id, job.leaseToken, { ok: 2 })).toEqual({ ok: false, reason: 'stale_lease' });
  });

  it('a failure outcome is retried the same way; closing the store while one waits gives it one last try, then a coded error', { timeout: 20_000 }, async () => {
    const job = await runningJob();
    holdWriteLock();
    const failing = engine.fail(job.id, job.leaseToken, { error: 'boom', outcome: 'failed', retryAt: Date.now() });
    await waitFor(() => engine.space.retrying === 1, { timeoutMs: 10_000, message: 'the failure is being retried' });
    locker!.exec('ROLLBACK');
    expect(await failing).toMatchObject({ ok: true, job: { state: 'queued', attempts: 1 } });
    expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual(['failed']);

    // Closing the store while a retry waits: one last try, then the coded error (not an unhandled SQLite one).
    const again = (await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 }))[0]!;
    holdWriteLock();
    const stuck = engine.complete(again.id, again.leaseToken, null);
    await waitFor(() => engine.space.retrying === 1, { timeoutMs: 10_000, message: 'the completion is being retried' });
    const closing = engine.close();
    await expect(stuck).rejects.toMatchObject({ code: 'store_unavailable', retryAfterSeconds: 1 });
    await closing;
    engine = await openSqliteEngine({ path: join(dir, 'drover-other.db') }); // afterEach closes something open
  });
});
