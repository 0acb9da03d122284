/**
 * Shared set-up for the multi-node tests: a fresh schema per test file on the
 * PostgreSQL at DROVER_TEST_PG_URL (dropped after), side tables the fixture
 * handlers write to, and `drover start` child processes on that schema.
 * Fails (never skips) when PostgreSQL is unreachable.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

export const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const CONFIG = fileURLToPath(new URL('./fixtures/cluster.config.mjs', import.meta.url));
export const KEY = 'drv_multinode_test_admin_key_0123456789';

export interface Cluster {
  schema: string;
  db: pg.Pool;
  /** Start `drover start` as node `id` (its DROVER_NODE_ID) on the cluster's schema. */
  start(id: string, env?: Record<string, string>): Promise<ChildNode>;
  /** One row of a query against the cluster's schema (`$schema` is replaced by its name). */
  query<R extends pg.QueryResultRow = any>(sql: string, values?: unknown[]): Promise<R[]>;
  enqueue(node: ChildNode, jobs: Array<{ handler: string; payload?: unknown }>): Promise<string[]>;
  close(): Promise<void>;
}

export async function createCluster(): Promise<Cluster> {
  const schema = `drover_mn_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const db = new pg.Pool({ connectionString: PG_URL, max: 4 });
  db.on('error', () => undefined);
  try {
    await db.query('SELECT 1');
  } catch (error) {
    await db.end();
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${(error as Error).message}); start it (\`.ci/run\` does) or set DROVER_TEST_PG_URL`);
  }
  await db.query(`CREATE SCHEMA ${schema}`);
  await db.query(`
    CREATE TABLE ${schema}.side_effects (job_id bigint NOT NULL, node text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE TABLE ${schema}.fence_log (job_id bigint NOT NULL, attempt int NOT NULL, node text NOT NULL, phase text NOT NULL);
    CREATE TABLE ${schema}.key_load (k text PRIMARY KEY, running int NOT NULL DEFAULT 0, peak int NOT NULL DEFAULT 0, runs int NOT NULL DEFAULT 0);
    CREATE TABLE ${schema}.ticks (tick_at text NOT NULL, job_id bigint NOT NULL, node text NOT NULL);`);
  const dirs: string[] = [];
  return {
    schema,
    db,
    async start(id, env = {}) {
      const dir = mkdtempSync(join(tmpdir(), `drover-mn-${id}-`));
      dirs.push(dir);
      return startChildNode({
        config: CONFIG,
        cwd: dir,
        timeoutMs: 30_000,
        env: {
          DROVER_DATABASE_URL: PG_URL,
          DROVER_PG_SCHEMA: schema,
          DROVER_NODE_ID: id,
          DROVER_BOOTSTRAP_ADMIN_KEY: KEY,
          DROVER_SHUTDOWN_GRACE_MS: '2000',
          SIDE_SCHEMA: schema,
          ...env,
        },
      });
    },
    async query(sql, values = []) {
      return (await db.query(sql.replaceAll('$schema', schema), values)).rows;
    },
    async enqueue(node, jobs) {
      const ids: string[] = [];
      for (let i = 0; i < jobs.length; i += 1000) {
        const res = await api(node.url, KEY, 'POST', '/v1/jobs', { jobs: jobs.slice(i, i + 1000) });
        if (res.status !== 202) throw new Error(`enqueue answered ${res.status}: ${JSON.stringify(res.body)}`);
        ids.push(...res.body.jobs.map((j: { id: string }) => j.id));
      }
      return ids;
    },
    async close() {
      await killAllChildren();
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.end();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Wait until every node in `ids` has heartbeated for at least `ms` (so it may judge its peers), bounded. */
export async function waitUntilSettled(cluster: Cluster, ids: string[], ms: number): Promise<void> {
  await waitFor(
    async () => {
      const rows = await cluster.query<{ node_id: string; started_at: number }>('SELECT node_id, started_at FROM $schema.nodes');
      const now = Date.now();
      return ids.every((id) => rows.some((r) => r.node_id === id && now - Number(r.started_at) >= ms));
    },
    { timeoutMs: ms + 15_000, intervalMs: 50, message: `nodes ${ids.join(', ')} registered for ${ms} ms` },
  );
}
