/**
 * A batch of successes that wants no rows back (a drain's completions) goes
 * out as SETTLE_SUCCEEDED, a narrower statement than the general SETTLE. It
 * must leave a job exactly as SETTLE's success branch does, count it finished
 * once, wake the queue of a keyed job, and answer stale and unknown calls the
 * same way.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PG_URL } from '../helpers/node.js';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import type { NewJob } from '../../src/core/types.js';
import { clientConfig } from '../../src/store/postgres/connection.js';
import { SettleBatch } from '../../src/store/postgres/settle-batch.js';

const { admin, migrated } = pgEnginesPerTest();
const pools: pg.Pool[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) await pool.end();
});

const COMPARED = 'state, result::text, attempts, crashes, lease_seq, lease_token, lease_expires_at, last_error, dead_reason, run_at, finished_at, updated_at, worker_id';

describe('postgres batch of successes', () => {
  it('leaves jobs as the general statement does, counts them once and wakes a keyed queue', async () => {
    const { engine, schema } = await migrated();
    const job = (i: number, key?: string): NewJob => ({ handler: 'h', queue: key ? 'keyed' : 'plain', payload: { i }, priority: 0, runAt: 1, maxAttempts: 3, ...(key ? { concurrencyKey: key, concurrencyLimit: 5 } : {}) });
    await engine.enqueue([job(0), job(1), job(2), job(3), job(4, 'k')]);
    const leased = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 10 }], limit: 10, leaseMs: 60_000 });
    expect(leased).toHaveLength(5);
    const byPayload = (i: number) => leased.find((j) => (j.payload as { i: number }).i === i)!;

    const pool = new pg.Pool(clientConfig({ url: PG_URL, schema, applicationName: 'drover-settle-test' }));
    pools.push(pool);
    const statements: string[] = [];
    // Which named statement each settle sent (the fallback lookup of unmatched ids is unnamed).
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
    (pool as unknown as { query: typeof query }).query = (...args) => {
      const config = args[0] as pg.QueryConfig | string;
      if (typeof config === 'object' && config.name) statements.push(config.name);
      return query(...args);
    };
    const woken: string[] = [];
    const settle = new SettleBatch({ pool, clock: () => 5_000, woke: (queues) => woken.push(...queues) });
    try {
      // Lean successes (one batch): the narrow statement. The same with a row asked: the general one.
      const lean = await Promise.all([0, 1, 4].map((i) => settle.submit(byPayload(i).id, byPayload(i).leaseToken, { kind: 'succeeded', result: { i } }, false)));
      expect(lean).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
      const full = await Promise.all([2, 3].map((i) => settle.submit(byPayload(i).id, byPayload(i).leaseToken, { kind: 'succeeded', result: { i } }, true)));
      expect(full.map((r) => r.ok)).toEqual([true, true]);
      expect(statements).toEqual(['drover_settle_succeeded', 'drover_settle']);
      expect(woken).toEqual(['keyed']);

      const rows = async (i: number) =>
        (await admin.query(`SELECT ${COMPARED} FROM ${schema}.jobs WHERE id = $1`, [byPayload(i).id])).rows[0] as Record<string, unknown>;
      const viaNarrow = await rows(1);
      const viaGeneral = await rows(3);
      expect({ ...viaNarrow, result: null }).toEqual({ ...viaGeneral, result: null });
      expect(viaNarrow).toMatchObject({ state: 'succeeded', result: '{"i":1}', lease_token: null, lease_expires_at: null, finished_at: '5000', updated_at: '5000' });
      const { rows: counts } = await admin.query(`SELECT queue, n FROM ${schema}.queue_counts WHERE kind = 'finished' ORDER BY queue`);
      expect(counts).toEqual([
        { queue: 'keyed', n: '1' },
        { queue: 'plain', n: '4' },
      ]);
      const { rows: attempts } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.attempts`);
      expect(attempts[0].n).toBe(0);

      // Settled twice (once in the same batch), a wrong token, an unknown job: stale, stale, stale, not found.
      const again = byPayload(0);
      const answers = await Promise.all([
        settle.submit(again.id, again.leaseToken, { kind: 'succeeded', result: null }, false),
        settle.submit(again.id, again.leaseToken, { kind: 'succeeded', result: null }, false),
        settle.submit(byPayload(1).id, 'not-the-token', { kind: 'succeeded', result: null }, false),
        settle.submit('999999', 'x', { kind: 'succeeded', result: null }, false),
      ]);
      expect(answers).toEqual([
        { ok: false, reason: 'stale_lease' },
        { ok: false, reason: 'stale_lease' },
        { ok: false, reason: 'stale_lease' },
        { ok: false, reason: 'not_found' },
      ]);
      expect((await admin.query(`SELECT n FROM ${schema}.queue_counts WHERE kind = 'finished' AND queue = 'plain'`)).rows[0].n).toBe('4');
    } finally {
      await settle.close();
    }
  });

  it('takes one job once when the same lease comes twice in one batch', async () => {
    const { engine, schema } = await migrated();
    await engine.enqueue([{ handler: 'h', queue: 'q', payload: {}, priority: 0, runAt: 1, maxAttempts: 3 }]);
    const [job] = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
    const pool = new pg.Pool(clientConfig({ url: PG_URL, schema, applicationName: 'drover-settle-test' }));
    pools.push(pool);
    const settle = new SettleBatch({ pool, clock: () => 5_000, woke: () => undefined });
    try {
      const answers = await Promise.all([1, 2].map(() => settle.submit(job!.id, job!.leaseToken, { kind: 'succeeded', result: null }, false)));
      expect(answers.filter((a) => a.ok)).toHaveLength(1);
      expect((await admin.query(`SELECT n FROM ${schema}.queue_counts WHERE kind = 'finished'`)).rows[0].n).toBe('1');
    } finally {
      await settle.close();
    }
  });
});
