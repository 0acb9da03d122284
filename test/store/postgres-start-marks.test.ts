/**
 * The PostgreSQL hot path's batch answers and the start marks' own
 * connection (start-batch.ts, settle-batch.ts, pipelined.ts), against the real
 * server: a batch answers with one row, so every mix of matched and
 * unmatched calls in one batch must still get its own answer; and the marks'
 * pipelined connection, killed while idle, is replaced before the next mark
 * instead of failing it.
 */
import { describe, expect, it } from 'vitest';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import type { NewJob } from '../../src/core/types.js';
import type { PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { waitFor } from '../helpers/wait-for.js';

const { admin, migrated } = pgEnginesPerTest();

async function engineWithJobs(n: number): Promise<{ engine: PostgresEngine; schema: string }> {
  const { engine, schema } = await migrated();
  const job = (i: number): NewJob => ({ handler: 'h', queue: 'default', payload: i, priority: 0, runAt: Date.now(), maxAttempts: 3 });
  await engine.enqueue(Array.from({ length: n }, (_, i) => job(i)));
  return { engine, schema };
}

const lease = (engine: PostgresEngine, limit: number) => engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: limit }], limit, leaseMs: 60_000 });

describe('postgres batch answers', () => {
  it('a batch of marks none of which match answers each as stale or gone, not as started', async () => {
    const { engine } = await engineWithJobs(2);
    const [a, b] = await lease(engine, 2);
    const results = await Promise.all([engine.start(a!.id, 'not-its-token'), engine.start(b!.id, 'nor-this'), engine.start('999999', b!.leaseToken)]);
    expect(results).toEqual([
      { ok: false, reason: 'stale_lease' },
      { ok: false, reason: 'stale_lease' },
      { ok: false, reason: 'not_found' },
    ]);
    expect(await Promise.all([engine.start(a!.id, a!.leaseToken), engine.start(b!.id, b!.leaseToken)])).toEqual([{ ok: true }, { ok: true }]);
  });

  it('lean completions settled together get each its own answer, whether all, some or none match', async () => {
    const { engine, schema } = await engineWithJobs(5);
    const [a, b, c, d, e] = await lease(engine, 5);
    const some = await Promise.all([
      engine.complete(a!.id, a!.leaseToken, 'a', { row: false }),
      engine.complete(b!.id, 'not-its-token', 'b', { row: false }),
      engine.complete(c!.id, c!.leaseToken, 'c', { row: false }),
      engine.complete('999999', c!.leaseToken, 'x', { row: false }),
    ]);
    expect(some).toEqual([{ ok: true }, { ok: false, reason: 'stale_lease' }, { ok: true }, { ok: false, reason: 'not_found' }]);
    const none = await Promise.all([engine.complete(a!.id, a!.leaseToken, 'again', { row: false }), engine.complete(d!.id, 'not-its-token', 'd', { row: false })]);
    expect(none).toEqual([
      { ok: false, reason: 'stale_lease' },
      { ok: false, reason: 'stale_lease' },
    ]);
    const all = await Promise.all([engine.complete(d!.id, d!.leaseToken, 'd', { row: false }), engine.complete(e!.id, e!.leaseToken, 'e', { row: false })]);
    expect(all).toEqual([{ ok: true }, { ok: true }]);
    const { rows } = await admin.query(`SELECT payload, state, result FROM ${schema}.jobs ORDER BY id`);
    expect(rows).toEqual([
      { payload: 0, state: 'succeeded', result: 'a' },
      { payload: 1, state: 'running', result: null },
      { payload: 2, state: 'succeeded', result: 'c' },
      { payload: 3, state: 'succeeded', result: 'd' },
      { payload: 4, state: 'succeeded', result: 'e' },
    ]);
  });
});

describe('the start marks connection', () => {
  it('killed while idle, is replaced before the next mark instead of failing it', async () => {
    const { engine, schema } = await engineWithJobs(3);
    const [a, b, c] = await lease(engine, 3);
    expect(await engine.start(a!.id, a!.leaseToken)).toEqual({ ok: true });
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%WITH marked AS%'",
      [`drover/${schema}`],
    );
    expect(rows).toHaveLength(1);
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    await waitFor(() => engine.connectionErrors.active === 1, { timeoutMs: 5_000, message: 'the marks connection error was seen' });
    expect(await Promise.all([engine.start(b!.id, b!.leaseToken), engine.start(c!.id, c!.leaseToken)])).toEqual([{ ok: true }, { ok: true }]);
    const { rows: marked } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.jobs WHERE started_seq = lease_seq AND state = 'running'`);
    expect(marked[0].n).toBe(3);
  });
});
