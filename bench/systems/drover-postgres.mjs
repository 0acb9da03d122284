/** Drover on its PostgreSQL engine, default settings (poolMax 10, synchronous_commit as the server has it): a throwaway schema per run, dropped after. */
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { droverSystem } from './drover.mjs';
import { PG_URL, dropSchema, schemaName } from './pg-util.mjs';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/** Run `body(client)` in the run's schema. */
async function withClient(run, body) {
  const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${run.runEnv.DROVER_PG_SCHEMA}` });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

export default function create(options) {
  return droverSystem(
    {
      name: 'drover postgres',
      settings: { store: `PostgreSQL 15 at ${PG_URL.replace(/\/\/[^@]*@/, '//')}, throwaway schema per run`, poolMax: '10 (default)', other: 'all defaults' },
      storeUrl: () => PG_URL,
      runEnv: () => ({ DROVER_PG_SCHEMA: schemaName('bench_drover') }),
      dropRun: (env) => dropSchema(env.DROVER_PG_SCHEMA),
      /**
       * `times` copies of the queued jobs there are (every column but the identity), the queue's
       * depth counter moved by as many, then VACUUM ANALYZE: a backlog that built up over time has
       * been vacuumed and analysed by autovacuum; without it, the insert-triggered autovacuum of the
       * fresh million rows runs during the drain and takes one of this machine's two cores.
       */
      copyJobs(run, times) {
        return withClient(run, async (client) => {
          const { rows } = await client.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'jobs' AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position",
          );
          const columns = rows.map((r) => r.column_name).join(', ');
          await client.query('BEGIN');
          const { rowCount } = await client.query(
            `INSERT INTO jobs (${columns}) SELECT ${columns} FROM (SELECT * FROM jobs WHERE state = 'queued' ORDER BY id) AS j CROSS JOIN generate_series(1, $1)`,
            [times],
          );
          await client.query("UPDATE queue_counts SET n = n + $1 WHERE queue = 'default' AND kind = 'added'", [rowCount]);
          await client.query('COMMIT');
          await client.query('VACUUM ANALYZE jobs');
        });
      },
      /**
       * The lease statement's plan on the full table, as the hot path runs it (generic plan), with
       * actual rows and buffers: EXPLAIN ANALYZE in a transaction that is rolled back, so nothing is leased.
       */
      async leasePlan(run) {
        const { leaseFastSql } = await import(pathToFileURL(join(DIST, 'store/postgres/lease.js')).href);
        return withClient(run, async (client) => {
          await client.query('SET plan_cache_mode = force_generic_plan');
          await client.query(`PREPARE lf(text[], int[], int, text, bigint[], text, bigint, text, int[]) AS ${leaseFastSql(false)}`);
          await client.query('BEGIN');
          try {
            const { rows } = await client.query("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) EXECUTE lf('{noop}', '{10}', 10, 'plan', '{1}', 'bench-plan', 1, NULL, '{0}')");
            return rows.map((r) => r['QUERY PLAN']).join('\n');
          } finally {
            await client.query('ROLLBACK');
          }
        });
      },
    },
    options,
  );
}
