/**
 * A settle batch whose statement committed but whose answer was lost (the
 * connection broke after COMMIT, or a statement sent into a silent path ran
 * when it healed, after the node had given up on it) is retried, and the
 * retry is fenced: the jobs already left `running`. The retry must recognise
 * what its own earlier try committed and answer it as settled (else the node
 * logs "lease was lost ... outcome discarded" and never emits `job:succeeded`
 * for a success that was recorded), counting nothing twice, while a lease
 * that really was lost (cancelled, taken over and leased again) is still
 * refused.
 *
 * The first two tests lose the answer in the client (the statement runs to
 * its commit, then the call fails as a broken connection would); the third
 * loses it on a real connection: the statement waits behind a row lock while
 * the client's deadline passes, and commits once the lock goes, while the
 * retry waits behind it.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PG_URL } from '../helpers/node.js';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import { waitFor } from '../helpers/wait-for.js';
import type { LeasedJob, NewJob } from '../../src/core/types.js';
import { clientConfig } from '../../src/store/postgres/connection.js';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { SettleBatch } from '../../src/store/postgres/settle-batch.js';

const { admin, migrated } = pgEnginesPerTest();
const pools: pg.Pool[] = [];
const engines: PostgresEngine[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) await pool.end();
  for (const engine of engines.splice(0)) await engine.close();
});

const job = (handler: string, i: number, key?: string): NewJob => ({
  handler,
  queue: key ? 'keyed' : handler === 'lost' ? 'lost' : 'plain',
  payload: { i },
  priority: 0,
  runAt: 1,
  maxAttempts: 3,
  ...(key ? { concurrencyKey: key, concurrencyLimit: 5 } : {}),
});

/**
 * A pool whose first settle statement runs to its commit and then fails as a
 * broken connection does: the batch is committed, its answer lost.
 */
function losingFirstAnswer(schema: string): { pool: pg.Pool; sent: string[] } {
  const pool = new pg.Pool(clientConfig({ url: PG_URL, schema, applicationName: 'drover-settle-retry-test' }));
  pools.push(pool);
  const sent: string[] = [];
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
  (pool as unknown as { query: typeof query }).query = async (...args) => {
    const config = args[0] as pg.QueryConfig | string;
    const name = typeof config === 'object' ? config.name : undefined;
    if (name) sent.push(name);
    const result = await query(...args);
    if (name && sent.length === 1) throw new Error('Connection terminated unexpectedly');
    return result;
  };
  return { pool, sent };
}

/** Two leases lost for real: `cancelled` by an operator, `taken` reclaimed from its worker and leased again by another. */
async function lostLeases(engine: PostgresEngine): Promise<{ cancelled: LeasedJob; taken: LeasedJob; again: LeasedJob }> {
  await engine.enqueue([job('lost', 0), job('lost', 1)]);
  const [cancelled, taken] = await engine.lease({ workerId: 'w0', handlers: [{ name: 'lost', max: 2 }], limit: 2, leaseMs: 60_000 });
  expect(await engine.cancel(cancelled!.id)).toMatchObject({ state: 'cancelled' });
  await engine.reclaimWorker('w0', { poisonAfter: 5 });
  const [again] = await engine.lease({ workerId: 'w2', handlers: [{ name: 'lost', max: 1 }], limit: 1, leaseMs: 60_000 });
  expect(again!.id).toBe(taken!.id);
  return { cancelled: cancelled!, taken: taken!, again: again! };
}

/** Jobs counted finished per queue, but for the lost leases' own queue (a cancel counts there). */
const finished = async (schema: string) =>
  Object.fromEntries(
    (await admin.query(`SELECT queue, n::int AS n FROM ${schema}.queue_counts WHERE kind = 'finished' AND queue <> 'lost'`)).rows.map((r) => [r.queue, r.n]),
  );

describe('postgres: a settle retried after its answer was lost', () => {
  it('successes (the drain statement): the retry answers them settled, counted once; lost leases still refused', async () => {
    const { engine, schema } = await migrated();
    const { cancelled, taken, again } = await lostLeases(engine);
    await engine.enqueue([job('h', 0), job('h', 1), job('h', 2, 'k')]);
    const leased = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 3 }], limit: 3, leaseMs: 60_000 });
    expect(leased).toHaveLength(3);

    const { pool, sent } = losingFirstAnswer(schema);
    const woken: string[] = [];
    const settle = new SettleBatch({ pool, clock: () => 5_000, woke: (queues) => woken.push(...queues) });
    try {
      const answers = await Promise.all([
        ...leased.map((j) => settle.submit(j.id, j.leaseToken, { kind: 'succeeded', result: { id: j.id } }, false)),
        settle.submit(cancelled.id, cancelled.leaseToken, { kind: 'succeeded', result: null }, false),
        settle.submit(taken.id, taken.leaseToken, { kind: 'succeeded', result: null }, false),
      ]);
      // One batch, sent twice: the first answer was lost, the retry was fenced on every row.
      expect(sent).toEqual(['drover_settle_succeeded', 'drover_settle_succeeded']);
      expect(answers).toEqual([{ ok: true }, { ok: true }, { ok: true }, { ok: false, reason: 'stale_lease' }, { ok: false, reason: 'stale_lease' }]);
      // The keyed job freed a slot of its key: the wake-up that went with the lost answer is sent.
      expect(woken).toEqual(['keyed']);
      expect(await finished(schema)).toEqual({ plain: 2, keyed: 1 });
      expect(await engine.getJob(cancelled.id)).toMatchObject({ state: 'cancelled' });
      expect(await engine.getJob(taken.id)).toMatchObject({ state: 'running', leaseToken: again.leaseToken, workerId: 'w2' });

      // Another batch with the same leases is a second settle, not a retry: refused, nothing counted.
      const second = await Promise.all(leased.map((j) => settle.submit(j.id, j.leaseToken, { kind: 'succeeded', result: null }, false)));
      expect(second.every((a) => !a.ok && a.reason === 'stale_lease')).toBe(true);
      expect(await finished(schema)).toEqual({ plain: 2, keyed: 1 });
      for (const j of leased) expect(await engine.getJob(j.id)).toMatchObject({ state: 'succeeded', result: { id: j.id } });
    } finally {
      await settle.close();
    }
  });

  it('any mix with rows (the general statement): each call its own answer, one attempt row each, the same lease twice settled once', async () => {
    const { engine, schema } = await migrated();
    const { taken } = await lostLeases(engine);
    await engine.enqueue([job('h', 0), job('h', 1), job('h', 2)]);
    const [done, failed, released] = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 3 }], limit: 3, leaseMs: 60_000 });

    const { pool, sent } = losingFirstAnswer(schema);
    const woken: string[] = [];
    const settle = new SettleBatch({ pool, clock: () => 5_000, woke: (queues) => woken.push(...queues) });
    try {
      const answers = await Promise.all([
        settle.submit(done!.id, done!.leaseToken, { kind: 'succeeded', result: 'first' }),
        settle.submit(done!.id, done!.leaseToken, { kind: 'succeeded', result: 'second' }),
        settle.submit(failed!.id, failed!.leaseToken, { kind: 'failed', request: { error: 'boom', outcome: 'failed', retryAt: 5_000 } }),
        settle.submit(released!.id, released!.leaseToken, { kind: 'released' }),
        settle.submit(taken.id, taken.leaseToken, { kind: 'failed', request: { error: 'late', outcome: 'failed', retryAt: null } }),
      ]);
      expect(sent).toEqual(['drover_settle', 'drover_settle']);
      // The same lease twice in one batch: the one the committed try took is answered settled, the other stale.
      const twice = answers.slice(0, 2);
      expect(twice.filter((a) => a.ok)).toHaveLength(1);
      expect(twice.filter((a) => !a.ok)).toEqual([{ ok: false, reason: 'stale_lease' }]);
      const settledDone = twice.find((a) => a.ok)!;
      expect(settledDone).toMatchObject({ ok: true, job: { id: done!.id, state: 'succeeded' } });
      expect((await engine.getJob(done!.id))!.result).toBe(twice[0]!.ok ? 'first' : 'second');
      expect(answers[2]).toMatchObject({ ok: true, job: { id: failed!.id, state: 'queued', lastError: 'boom' } });
      expect(answers[3]).toMatchObject({ ok: true, job: { id: released!.id, state: 'queued' } });
      expect(answers[4]).toEqual({ ok: false, reason: 'stale_lease' });
      expect(woken).toEqual(['plain']);

      expect(await finished(schema)).toEqual({ plain: 1 });
      const { rows: attempts } = await admin.query(`SELECT job_id::text AS id, outcome FROM ${schema}.attempts WHERE worker_id = 'w1' ORDER BY job_id`);
      expect(attempts).toEqual([
        { id: failed!.id, outcome: 'failed' },
        { id: released!.id, outcome: 'released' },
      ]);
      expect(await engine.getJob(taken.id)).toMatchObject({ state: 'running', workerId: 'w2' });
    } finally {
      await settle.close();
    }
  });

  it('on a real connection: the statement given up on commits behind a lock while its retry waits, and the retry answers it settled', { timeout: 30_000 }, async () => {
    const { engine: setup, schema } = await migrated();
    // The client gives up after 1 s; the server lets a statement wait 10 s (the default), so the settle outlives its caller.
    const engine = openPostgresEngine({ url: PG_URL, schema, timeouts: { queryMs: 1_000, connectMs: 1_000 } });
    engines.push(engine);
    await engine.migrate();
    const { taken } = await lostLeases(setup);
    await setup.enqueue([job('h', 0)]);
    const [mine] = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });

    const lock = await admin.connect();
    let answers: unknown[];
    try {
      await lock.query('BEGIN');
      await lock.query(`SELECT 1 FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [mine!.id]);
      const settling = Promise.all([engine.complete(mine!.id, mine!.leaseToken, 'done', { row: false }), engine.complete(taken.id, taken.leaseToken, null, { row: false })]);
      // Two statements wait on the row: the one the client gave up on, and its retry (queued behind it).
      const waiting = async () => {
        // Statistics views are read once per transaction unless the snapshot is cleared.
        await lock.query('SELECT pg_stat_clear_snapshot()');
        return (await lock.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [`drover/${schema}`])).rows[0].n;
      };
      await waitFor(async () => (await waiting()) >= 2, { timeoutMs: 10_000, intervalMs: 10, message: 'the settle and its retry wait on the row' });
      await lock.query('COMMIT');
      answers = await settling;
    } finally {
      lock.release();
    }
    expect(answers).toEqual([{ ok: true }, { ok: false, reason: 'stale_lease' }]);
    expect(await engine.getJob(mine!.id)).toMatchObject({ state: 'succeeded', result: 'done' });
    expect(await finished(schema)).toEqual({ plain: 1 });
  });
});
