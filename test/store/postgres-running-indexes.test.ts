/**
 * Migration 0010 dropped `jobs_running_worker`: a lease is never a HOT update
 * (it changes `state`), so every index whose predicate its new row version
 * matches takes an entry, and that one cost each lease one more. What read it
 * (a worker's or a dead node's reclaim, undoing a lease call, the worker cap's
 * count) now reads the running set through `jobs_running_lease`. This pins
 * that each of them still plans as a scan of the running set, never of the
 * backlog, on the generic plans the engine's prepared statements settle on,
 * with and without table statistics.
 */
import { describe, expect, it } from 'vitest';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import { RUNNING_OF_HOLDERS } from '../../src/store/postgres/lease-caps.js';
import { RELEASE_BY_CALL } from '../../src/store/postgres/lease.js';
import { RECLAIM_DEAD_NODES, RECLAIM_WORKER } from '../../src/store/postgres/reclaim.js';

const { admin, migrated } = pgEnginesPerTest();

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** Every scan of `jobs` in a plan: its node type and index. */
function jobsScans(node: PlanNode, out: string[] = []): string[] {
  if (node['Relation Name'] === 'jobs' || (node['Index Name'] ?? '').startsWith('jobs_')) out.push(`${node['Node Type']} ${node['Index Name'] ?? ''}`.trim());
  for (const child of node.Plans ?? []) jobsScans(child, out);
  return out;
}

describe('postgres running-set indexes (migration 0010)', () => {
  it('a lease writes entries in jobs_running_lease only, among the running indexes', async () => {
    const { schema } = await migrated();
    const { rows } = await admin.query("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'jobs' AND indexdef LIKE '%''running''%' ORDER BY 1", [schema]);
    // The others are partial on columns a plain lease leaves null (concurrency key, tenant, leasing key).
    expect(rows.map((r) => r.indexname)).toEqual(['jobs_running_concurrency', 'jobs_running_key', 'jobs_running_lease', 'jobs_running_tenant']);
  });

  it("a worker's running jobs are found in the running set, not by scanning the backlog", async () => {
    const { schema } = await migrated();
    // A backlog the size of a busy queue, and a running set spread over workers.
    await admin.query(`INSERT INTO ${schema}.jobs (handler, queue, state, payload, run_at, max_attempts, created_at, updated_at)
      SELECT 'h', 'default', 'queued', '{}', g, 3, g, g FROM generate_series(1, 20000) g`);
    await admin.query(`UPDATE ${schema}.jobs SET state = 'running', worker_id = 'w' || (id % 10), lease_token = md5(id::text),
      lease_call = 'c' || (id % 40), lease_expires_at = 1000 + id, leased_at = 1, lease_seq = 1, attempts = 1 WHERE id <= 200`);
    const statements: Array<[string, string, unknown[]]> = [
      ['worker cap count', RUNNING_OF_HOLDERS, ['w3', null]],
      ['undo a lease call', RELEASE_BY_CALL, ['w3', ['c3'], 5]],
      ['reclaim a worker', RECLAIM_WORKER, [5, 3, 'crashed', 'w3']],
      ['reclaim dead nodes', RECLAIM_DEAD_NODES, [5, 3, 'crashed', 4, 'n0']],
    ];
    const client = await admin.connect();
    try {
      await client.query(`SET search_path = ${schema}`);
      await client.query('SET plan_cache_mode = force_generic_plan');
      for (const analyzed of [false, true]) {
        if (analyzed) await client.query('ANALYZE jobs');
        for (const [name, sql, values] of statements) {
          await client.query('BEGIN');
          const { rows } = await client.query({ text: `EXPLAIN (FORMAT JSON) ${sql}`, values });
          await client.query('ROLLBACK');
          const scans = jobsScans(rows[0]['QUERY PLAN'][0].Plan);
          const where = `${name} (${analyzed ? 'analyzed' : 'never analyzed'}): ${scans.join(', ')}`;
          expect(scans.some((s) => s.endsWith('jobs_running_lease')), where).toBe(true);
          expect(scans.filter((s) => s.startsWith('Seq Scan')), where).toEqual([]);
        }
      }
    } finally {
      await client.query('RESET ALL');
      client.release();
    }
  });
});
