/**
 * A lease the node gave up on (its answer did not come within the query
 * deadline) may still commit, and may do so after the node undid it by call
 * id: on a path that went silent, the statement waits in the network or in a
 * session the server kept, and runs when the path heals. Its jobs must not
 * then sit `running` for a node that does not know them until their lease
 * expires (handler timeout + 30 s): uncertain-leases.ts undoes such a call
 * again until its leases would have expired.
 *
 * Here a lock stands in for the silent path, so the order is certain: the
 * lease statements wait behind an exclusive lock on `events` (the lease joins
 * it; the undo does not touch it) while the node times out, undoes them and
 * carries on; then the lock goes and they commit.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { waitFor } from '../helpers/wait-for.js';
import { PG_URL } from '../helpers/node.js';

const schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
admin.on('error', () => undefined);
// The client gives up after 1 s; the server lets a statement wait 10 s (the default), so a lease outlives its caller.
const engine = openPostgresEngine({ url: PG_URL, schema, timeouts: { queryMs: 1_000, connectMs: 1_000 } });

afterAll(async () => {
  await engine.close();
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`drover/${schema}`]);
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

const lease = (): LeaseRequest => ({ workerId: 'w', inProcess: true, handlers: [{ name: 'h', max: 4, leaseMs: 35_000, start: 4 }], limit: 4, leaseMs: 35_000 });

describe('postgres: a lease whose answer was lost', () => {
  it('commits after the node undid it: its jobs are put back within seconds, not left running until their lease expires', { timeout: 30_000 }, async () => {
    await engine.migrate();
    const now = Date.now();
    await engine.enqueue(Array.from({ length: 20 }, (_, i) => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: now, maxAttempts: 3 })));

    const lock = await admin.connect();
    try {
      await lock.query('BEGIN');
      await lock.query(`LOCK TABLE ${schema}.events IN ACCESS EXCLUSIVE MODE`);
      // Given up on: the statement still waits on the server.
      await expect(engine.lease(lease())).rejects.toThrow(/Query read timeout/);
      // The next lease undoes the first one by its call id (it has not committed: nothing to undo), then waits and is given up on too.
      await expect(engine.lease(lease())).rejects.toThrow(/Query read timeout/);
      await lock.query('COMMIT');
    } finally {
      lock.release();
    }
    // Both statements commit now: jobs leased to worker w, answered to nobody.
    await waitFor(async () => (await admin.query(`SELECT 1 FROM ${schema}.jobs WHERE state = 'running'`)).rows.length > 0, { timeoutMs: 5_000, message: 'the lost leases committed' });

    const held = new Set((await engine.lease(lease())).map((job) => job.id));
    const strays = async () =>
      (await admin.query<{ id: string }>(`SELECT id::text AS id FROM ${schema}.jobs WHERE state = 'running'`)).rows.map((r) => r.id).filter((id) => !held.has(id));
    // Before: the first call, undone once already, was forgotten: its 4 jobs stayed running for 35 s.
    await waitFor(async () => (await strays()).length === 0, { timeoutMs: 5_000, intervalMs: 50, message: 'no running job but those the node was answered' });
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.attempts WHERE outcome = 'released'`);
    expect(rows[0].n, 'both lost leases were undone, their attempts not spent').toBe(8);
    const spent = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.jobs WHERE state = 'queued' AND attempts > 0`);
    expect(spent.rows[0].n).toBe(0);
  });
});
