/**
 * On PostgreSQL a completion writes no attempt row: the job row keeps the
 * attempt's lease number, worker, lease time and finish, and getAttempts
 * reads the last attempt of a succeeded job from there (one heap insert and
 * one index insert fewer per job; docs/benchmarks.md, sixth pass). Attempts
 * that end any other way are still rows, and a job completed before this
 * change (its success is a row) shows that attempt once.
 */
import { describe, expect, it } from 'vitest';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import type { NewJob } from '../../src/core/types.js';

const { admin, migrated } = pgEnginesPerTest();

const job = (over: Partial<NewJob> = {}): NewJob => ({ handler: 'h', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3, ...over });

describe('postgres success attempts', () => {
  it('a completion writes no attempt row; a failure still does', async () => {
    const { engine, schema } = await migrated();
    await engine.enqueue([job(), job()]);
    const [a, b] = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 2 }], limit: 2, leaseMs: 60_000 });
    expect((await engine.complete(a!.id, a!.leaseToken, 'ok', { row: false })).ok).toBe(true);
    expect((await engine.fail(b!.id, b!.leaseToken, { error: 'boom', outcome: 'failed', retryAt: null })).ok).toBe(true);
    const { rows } = await admin.query(`SELECT job_id::text AS id, outcome FROM ${schema}.attempts ORDER BY job_id`);
    expect(rows).toEqual([{ id: b!.id, outcome: 'failed' }]);
    expect(await engine.getAttempts(a!.id)).toMatchObject([{ attempt: 1, workerId: 'w', outcome: 'succeeded', error: null }]);
  });

  it('a success written as a row before the change shows once', async () => {
    const { engine, schema } = await migrated();
    await engine.enqueue([job()]);
    const [a] = await engine.lease({ workerId: 'w-old', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
    expect((await engine.complete(a!.id, a!.leaseToken, null)).ok).toBe(true);
    // What the earlier completion statement wrote for it.
    await admin.query(
      `INSERT INTO ${schema}.attempts (job_id, attempt, worker_id, started_at, ended_at, outcome)
       SELECT id, lease_seq, worker_id, leased_at, finished_at, 'succeeded' FROM ${schema}.jobs WHERE id = $1`,
      [a!.id],
    );
    const attempts = await engine.getAttempts(a!.id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, workerId: 'w-old', outcome: 'succeeded' });
  });
});
