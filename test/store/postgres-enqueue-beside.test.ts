/**
 * An idle node's enqueue (one whose insert leases its jobs) goes out beside
 * the plain insert in flight instead of after its answer
 * (src/store/postgres/enqueue-batch.ts `leasesAtIntake`); a plain enqueue
 * still waits for the next batch. Both inserts then queue on the queue's
 * count row inside PostgreSQL, and the counts come out exact. Real PostgreSQL:
 * the test holds that row's lock, so the inserts stay out until it lets go.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/core/types.js';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import { PG_URL } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const { admin, migrated } = pgEnginesPerTest();

const job = (i: number): NewJob => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 });
const leased = { lease: { workerId: 'w', leaseMs: [30_000] } };

/** Two event-loop turns: a batch the engine may send has been sent (its batcher waits one setImmediate). */
const turns = async () => {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Backends waiting, directly or in line, on the lock `holder` holds. */
async function waitingOn(holder: number): Promise<number> {
  const { rows } = await admin.query<{ pid: number; blockers: number[] }>(`SELECT pid, pg_blocking_pids(pid) AS blockers FROM pg_stat_activity WHERE wait_event_type = 'Lock'`);
  const behind = new Set<number>([holder]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const { pid, blockers } of rows) {
      if (!behind.has(pid) && blockers.some((b) => behind.has(b))) {
        behind.add(pid);
        grew = true;
      }
    }
  }
  return behind.size - 1;
}

describe('PostgreSQL: an enqueue leasing its jobs goes beside the one in flight', () => {
  it('sends it at once while a plain enqueue waits for the batch in flight; all commit, counted once', async () => {
    const { engine, schema } = await migrated();
    await engine.enqueue([job(0)]); // the queue's count row exists
    const holder = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT n FROM ${schema}.queue_counts WHERE queue = 'default' AND kind = 'added' FOR UPDATE`);
      const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const statements = engine.enqueueStats.statements;

      const first = engine.enqueue([job(1)]);
      await waitFor(async () => (await waitingOn(holderPid)) === 1, { timeoutMs: 5_000, message: 'the first insert waits on the row' });
      const plain = engine.enqueue([job(2)]);
      await turns();
      expect(engine.enqueueStats.statements - statements).toBe(1);

      // The leasing call goes now, taking the plain one waiting with it.
      const leasing = engine.enqueue([job(3)], leased);
      await waitFor(async () => (await waitingOn(holderPid)) === 2, { timeoutMs: 5_000, message: 'the second insert waits on the row too' });
      expect(engine.enqueueStats).toMatchObject({ statements: statements + 2 });

      await holder.query('COMMIT');
      const [a, b, c] = await Promise.all([first, plain, leasing]);
      expect(a[0]!.job.state).toBe('queued');
      expect(b[0]!.job.state).toBe('queued');
      expect(c[0]!.leased?.state).toBe('running');
      const { rows } = await admin.query(`SELECT n::int AS n FROM ${schema}.queue_counts WHERE queue = 'default' AND kind = 'added'`);
      expect(rows[0].n).toBe(4);
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${schema}.jobs`)).rows[0].n).toBe(4);
    } finally {
      await holder.end();
    }
  });
});
