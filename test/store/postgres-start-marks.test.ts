/**
 * The PostgreSQL hot path's batch answers and the start marks' own
 * connection (start-batch.ts, settle-batch.ts, pipelined.ts), against the real
 * server: a batch answers with one row, so every mix of matched and
 * unmatched calls in one batch must still get its own answer; and the marks'
 * pipelined connection, killed while idle, is replaced before the next mark
 * instead of failing it. Start on send (`StartWatch`): a watched mark is
 * answered once written, while the store has not answered it (its row locked
 * by the test), only on a connection in good standing; what the store then
 * says against it goes to the watch.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import type { NewJob } from '../../src/core/types.js';
import type { StartResult, StartWatch } from '../../src/store/engine.js';
import type { PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { PG_URL } from '../helpers/node.js';
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

describe('postgres batch fences', () => {
  // A batch with no id twice finds its rows by one index scan over the ids (START_COUNTED_BY_ID,
  // SETTLE_SUCCEEDED); the fence is still the pair: a row changes only when its current token
  // came in beside its own id. A job twice in one batch takes the joined statements.
  it('crossed tokens (each job named with the other job token) change neither job', async () => {
    const { engine, schema } = await engineWithJobs(2);
    const [a, b] = await lease(engine, 2);
    const marks = await Promise.all([engine.start(a!.id, b!.leaseToken), engine.start(b!.id, a!.leaseToken)]);
    expect(marks).toEqual([
      { ok: false, reason: 'stale_lease' },
      { ok: false, reason: 'stale_lease' },
    ]);
    const done = await Promise.all([engine.complete(a!.id, b!.leaseToken, 'a', { row: false }), engine.complete(b!.id, a!.leaseToken, 'b', { row: false })]);
    expect(done).toEqual([
      { ok: false, reason: 'stale_lease' },
      { ok: false, reason: 'stale_lease' },
    ]);
    const { rows } = await admin.query(`SELECT state, started_seq, result FROM ${schema}.jobs ORDER BY id`);
    expect(rows).toEqual([
      { state: 'running', started_seq: 0, result: null },
      { state: 'running', started_seq: 0, result: null },
    ]);
  });

  it("a job's old and new lease in one batch: the new one is marked and settled, the old one told stale", async () => {
    const { engine, schema } = await engineWithJobs(1);
    const [old] = await lease(engine, 1);
    expect(await engine.release(old!.id, old!.leaseToken)).toMatchObject({ ok: true });
    const [current] = await lease(engine, 1);
    expect(current!.id).toBe(old!.id);
    for (const order of [
      [old!, current!],
      [current!, old!],
    ]) {
      const marks = await Promise.all(order.map((j) => engine.start(j.id, j.leaseToken)));
      expect(marks).toEqual(order.map((j) => (j === current ? { ok: true } : { ok: false, reason: 'stale_lease' })));
    }
    const done = await Promise.all([engine.complete(old!.id, old!.leaseToken, 'old', { row: false }), engine.complete(current!.id, current!.leaseToken, 'new', { row: false })]);
    expect(done).toEqual([{ ok: false, reason: 'stale_lease' }, { ok: true }]);
    const { rows } = await admin.query(`SELECT state, started_seq, lease_seq, result FROM ${schema}.jobs`);
    expect(rows).toEqual([{ state: 'succeeded', started_seq: 2, lease_seq: 2, result: 'new' }]);
  });
  it('a batch larger than the by-id statements take (findsById) is marked and settled by the joined ones, fenced alike', async () => {
    const { engine, schema } = await engineWithJobs(150);
    const jobs = await lease(engine, 150);
    expect(jobs).toHaveLength(150);
    // The last job is named with the first one's token: it alone must be refused.
    const tokenOf = (i: number) => (i === jobs.length - 1 ? jobs[0]!.leaseToken : jobs[i]!.leaseToken);
    const marks = await Promise.all(jobs.map((j, i) => engine.start(j.id, tokenOf(i))));
    expect(marks.filter((m) => m.ok)).toHaveLength(149);
    expect(marks.at(-1)).toEqual({ ok: false, reason: 'stale_lease' });
    const done = await Promise.all(jobs.map((j, i) => engine.complete(j.id, tokenOf(i), i, { row: false })));
    expect(done.filter((d) => d.ok)).toHaveLength(149);
    expect(done.at(-1)).toEqual({ ok: false, reason: 'stale_lease' });
    const { rows } = await admin.query(`SELECT state, count(*)::int AS n FROM ${schema}.jobs GROUP BY state ORDER BY state`);
    expect(rows).toEqual([
      { state: 'running', n: 1 },
      { state: 'succeeded', n: 149 },
    ]);
  });
});

describe('the start marks connection', () => {
  it('killed while idle, is replaced before the next mark instead of failing it', async () => {
    const { engine, schema } = await engineWithJobs(3);
    const [a, b, c] = await lease(engine, 3);
    expect(await engine.start(a!.id, a!.leaseToken)).toEqual({ ok: true });
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%SET started_seq = j.lease_seq%'",
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

/** A watch that records what it is told. */
function watching(): StartWatch & { told: Array<StartResult | Error>; settled: Promise<unknown> | null } {
  const told: Array<StartResult | Error> = [];
  const watch = {
    told,
    settled: null as Promise<unknown> | null,
    answered: (settled: Promise<unknown>) => void (watch.settled = settled),
    lost: (result: StartResult) => void told.push(result),
    failed: (error: unknown) => void told.push(error as Error),
  };
  return watch;
}

/** Run `body` while a transaction of its own holds the job's row lock: a mark of it cannot commit meanwhile. */
async function withRowLocked<T>(schema: string, id: string, body: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT 1 FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [id]);
    const result = await body();
    await client.query('COMMIT');
    return result;
  } finally {
    await client.end();
  }
}

/** Settled within `ms`, or 'pending'. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

describe('start on send', () => {
  it('answers a watched mark once it is written, before the store answers, on a connection in good standing only', async () => {
    const { engine, schema } = await engineWithJobs(3);
    // Not the dispatcher's lease (`inProcess`), so it does not open the marks connection: it is fresh here.
    const [a, b, c] = await lease(engine, 3);
    // The connection's first mark: not in good standing yet (nothing answered on it), so it waits for its answer.
    const first = watching();
    let waited: Promise<StartResult> | null = null;
    await withRowLocked(schema, a!.id, async () => {
      waited = engine.start(a!.id, a!.leaseToken, first);
      expect(await within(waited, 300)).toBe('pending');
    });
    expect(await waited).toEqual({ ok: true });
    // Answered just now: the next is answered as soon as it is written, though its row is locked.
    const watch = watching();
    await withRowLocked(schema, b!.id, async () => {
      expect(await within(engine.start(b!.id, b!.leaseToken, watch), 2_000)).toEqual({ ok: true });
      const { rows } = await admin.query(`SELECT started_seq = lease_seq AS marked FROM ${schema}.jobs WHERE id = $1`, [b!.id]);
      expect(rows[0].marked).toBe(false);
      expect(await within(watch.settled!, 100)).toBe('pending');
    });
    await watch.settled;
    await waitFor(async () => (await admin.query(`SELECT started_seq = lease_seq AS marked FROM ${schema}.jobs WHERE id = $1`, [b!.id])).rows[0].marked, { timeoutMs: 5_000 });
    // Without a watch a mark always waits for its answer.
    await withRowLocked(schema, c!.id, async () => expect(await within(engine.start(c!.id, c!.leaseToken), 300)).toBe('pending'));
    expect(first.settled).toBeNull();
    expect(first.told).toEqual([]);
    expect(watch.told).toEqual([]);
  });

  it("a node's first lease for its own dispatcher opens its marks connection, so the first mark after it is answered at send", async () => {
    const { engine, schema } = await engineWithJobs(1);
    const [a] = await engine.lease({ workerId: 'w1', inProcess: true, handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
    // The warming mark (of no jobs) has run on the server, and its answer is read: no connection of the engine is busy.
    await waitFor(
      async () => {
        const { rows } = await admin.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle' AND query LIKE '%SET started_seq = j.lease_seq%'", [`drover/${schema}`]);
        const stats = engine.poolStats();
        return rows.length === 1 && stats.total === stats.idle;
      },
      { timeoutMs: 5_000, message: 'the marks connection is open and answered' },
    );
    const watch = watching();
    await withRowLocked(schema, a!.id, async () => {
      expect(await within(engine.start(a!.id, a!.leaseToken, watch), 2_000)).toEqual({ ok: true });
    });
    await watch.settled;
    expect(watch.told).toEqual([]);
  });

  it('tells the watch when a mark answered at send finds the lease gone, or its statement fails', async () => {
    const { engine, schema } = await engineWithJobs(3);
    const [a, b, c] = await lease(engine, 3);
    expect(await engine.start(a!.id, a!.leaseToken)).toEqual({ ok: true });
    const lost = watching();
    expect(await engine.start(b!.id, 'not-its-token', lost)).toEqual({ ok: true });
    await waitFor(() => lost.told.length === 1, { timeoutMs: 5_000 });
    expect(lost.told).toEqual([{ ok: false, reason: 'stale_lease' }]);

    // Its statement fails after it was answered: the marks connection is killed while the mark waits for a lock.
    expect(await engine.start(a!.id, a!.leaseToken)).toEqual({ ok: true });
    const failed = watching();
    await withRowLocked(schema, c!.id, async () => {
      expect(await engine.start(c!.id, c!.leaseToken, failed)).toEqual({ ok: true });
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%SET started_seq = j.lease_seq%'", [`drover/${schema}`]);
      await waitFor(() => failed.told.length === 1, { timeoutMs: 5_000 });
    });
    expect(failed.told[0]).toMatchObject({ name: 'DroverError' });
    // The next mark waits for its answer (the connection is new) and succeeds.
    expect(await engine.start(c!.id, c!.leaseToken, watching())).toEqual({ ok: true });
  });
});
