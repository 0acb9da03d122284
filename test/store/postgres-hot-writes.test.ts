/**
 * The `jobs` table leaves room in its pages (migration 0008, fillfactor) so
 * that a start mark, which changes no indexed column, is a HOT update: the
 * lease's new row version lands on the page it came from, and the mark's
 * version beside it, without an entry in jobs_pkey or the running indexes.
 * Packed pages sent the lease's versions to fresh full pages, leaving the
 * mark no room (a fifth of the marks in a drain were HOT; docs/benchmarks.md).
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PG_URL } from '../helpers/node.js';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import type { NewJob } from '../../src/core/types.js';
import { clientConfig } from '../../src/store/postgres/connection.js';
import { START } from '../../src/store/postgres/start-batch.js';

const { admin, migrated } = pgEnginesPerTest();

describe('postgres jobs pages keep room for updates', () => {
  it('the migrated jobs table is filled to half a page by inserts', async () => {
    const { schema } = await migrated();
    const { rows } = await admin.query("SELECT reloptions FROM pg_class WHERE oid = format('%I.jobs', $1::text)::regclass", [schema]);
    expect(rows[0].reloptions).toContain('fillfactor=50');
  });

  it('start marks of jobs leased from full pages are HOT updates', async () => {
    const { engine, schema } = await migrated();
    // Five handlers' jobs interleaved, one handler's leased: the leased fifth of each page's rows fits
    // its lease versions and its marks (each larger than a queued row) into the room a half-full page
    // leaves, without pruning, which a snapshot held elsewhere in the database could hold back.
    const n = 100;
    const handlers = ['h', 'g', 'f', 'e', 'd'];
    const job = (i: number): NewJob => ({ handler: handlers[i % 5]!, queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 });
    await engine.enqueue(Array.from({ length: n * 5 }, (_, i) => job(i)));
    const leased = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: n }], limit: n, leaseMs: 60_000 });
    expect(leased).toHaveLength(n);
    // The engine's own mark statement, in a transaction of ours: its counters are exact and ours alone.
    const client = new pg.Client(clientConfig({ url: PG_URL, schema, applicationName: 'drover-hot-test' }));
    await client.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query(START, [leased.map((j) => Number(j.id)), leased.map((j) => j.leaseToken)]);
      expect(rows[0].matched).toBeNull(); // every mark matched
      const stats = await client.query(
        "SELECT pg_stat_get_xact_tuples_updated('jobs'::regclass) AS updated, pg_stat_get_xact_tuples_hot_updated('jobs'::regclass) AS hot",
      );
      expect(Number(stats.rows[0].updated)).toBe(n);
      expect(Number(stats.rows[0].hot)).toBeGreaterThanOrEqual(n * 0.9);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });
});
