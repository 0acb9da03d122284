/**
 * Shared set-up for the PostgreSQL fault tests: a fresh schema per test with
 * a side table the fixture's handler writes to through a direct connection,
 * `drover start` child processes reaching PostgreSQL through a FaultProxy,
 * bounded HTTP calls, and the end-state invariant. `cleanUp()` (afterEach)
 * kills by PID what a test started, closes its proxies and drops its schema.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expect } from 'vitest';
import { startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { FaultProxy } from './fault-proxy.js';
import { completedTwice } from '../helpers/pg-attempts.js';

export const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONFIG = fileURLToPath(new URL('./fixtures/pg-faults.config.mjs', import.meta.url));
const KEY = 'drv_pg_faults_test_admin_key_0123456789';
export const DEAD_NODE_MS = 1_500;

const db = new pg.Pool({ connectionString: PG_URL, max: 4 });
db.on('error', () => undefined);
const started: ChildNode[] = [];
const proxies: FaultProxy[] = [];
const dirs: string[] = [];
let schema = '';

export async function assertPostgres(): Promise<void> {
  await db.query('SELECT 1').catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${error.message}); start it or set DROVER_TEST_PG_URL`);
  });
}

export async function cleanUp(): Promise<void> {
  // Kill by PID what this test started, then drop its schema.
  for (const node of started.splice(0)) {
    if (node.child.exitCode === null && node.child.signalCode === null) {
      process.kill(node.pid, 'SIGKILL');
      await node.exited;
    }
  }
  for (const proxy of proxies.splice(0)) await proxy.close();
  if (schema) {
    // Sessions the black hole orphaned still hold the schema's locks: end them first.
    await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [`drover/${schema}`]);
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export async function endPool(): Promise<void> {
  await db.end();
}

export async function freshSchema(): Promise<string> {
  schema = `drover_pgf_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  await db.query(`CREATE SCHEMA ${schema}`);
  await db.query(`CREATE TABLE ${schema}.side_effects (job_id bigint NOT NULL, node text NOT NULL, at bigint NOT NULL DEFAULT (extract(epoch from clock_timestamp()) * 1000)::bigint)`);
  return schema;
}

export async function proxied(): Promise<{ proxy: FaultProxy; url: string }> {
  const target = new URL(PG_URL);
  const proxy = new FaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
  proxies.push(proxy);
  const via = new URL(PG_URL);
  via.port = String(await proxy.listen());
  return { proxy, url: via.toString() };
}

export async function startNode(id: string, databaseUrl: string, env: Record<string, string> = {}): Promise<ChildNode> {
  const dir = mkdtempSync(join(tmpdir(), `drover-pgf-${id}-`));
  dirs.push(dir);
  const node = await startChildNode({
    config: CONFIG,
    cwd: dir,
    timeoutMs: 30_000,
    env: {
      DROVER_DATABASE_URL: databaseUrl,
      DROVER_PG_SCHEMA: schema,
      DROVER_NODE_ID: id,
      DROVER_BOOTSTRAP_ADMIN_KEY: KEY,
      DROVER_SHUTDOWN_GRACE_MS: '2000',
      SIDE_URL: PG_URL,
      SIDE_SCHEMA: schema,
      ...env,
    },
  });
  started.push(node);
  return node;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
  ms: number;
}

/** One HTTP call with its own bound: a hang fails the test instead of stalling it. */
export async function call(node: ChildNode, method: 'GET' | 'POST', path: string, body?: unknown, boundMs = 10_000): Promise<Answer> {
  const t0 = Date.now();
  const response = await fetch(node.url + path, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(boundMs),
  });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: response.status, headers: response.headers, body: parsed, ms: Date.now() - t0 };
}

export const ready = async (node: ChildNode) => (await call(node, 'GET', '/health/ready', undefined, 5_000)).status;

export async function enqueue(node: ChildNode, n: number): Promise<string[]> {
  const res = await call(node, 'POST', '/v1/jobs', { jobs: Array.from({ length: n }, (_, i) => ({ handler: 'record', payload: { i } })) });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.jobs.map((j: { id: string }) => j.id);
}

export async function rows<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  return (await db.query<R>(sql.replaceAll('$schema', schema), values)).rows;
}

export const count = async (sql: string, values: unknown[] = []) => (await rows<{ n: number }>(sql, values))[0]!.n;

/**
 * Every job in the store succeeded exactly once, none is left running or
 * queued, and every acknowledged one (`ids`) is among them and ran. (A request
 * answered 503 may have committed before its answer was lost: such jobs must
 * finish too, so the store's own count is the total.)
 */
export async function expectAllSucceededOnce(ids: string[], boundMs: number): Promise<void> {
  try {
    await waitFor(async () => (await count("SELECT count(*)::int AS n FROM $schema.jobs WHERE state <> 'succeeded'")) === 0, {
      timeoutMs: boundMs,
      intervalMs: 50,
      message: 'every job in the store succeeded',
    });
  } catch (error) {
    // A bound missed once under heavy load (CI beside other suites): say what held the jobs, so a rerun is not the only clue.
    throw new Error(`${(error as Error).message}; unfinished: ${JSON.stringify(await unfinishedJobs())}`);
  }
  const total = await count('SELECT count(*)::int AS n FROM $schema.jobs');
  expect(total).toBeGreaterThanOrEqual(ids.length);
  const succeeded = new Set((await rows<{ id: string }>("SELECT id::text AS id FROM $schema.jobs WHERE state = 'succeeded'")).map((r) => r.id));
  for (const id of ids) expect(succeeded.has(id), `acknowledged job ${id} succeeded`).toBe(true);
  const twice = await rows<{ job_id: string }>(completedTwice('$schema'));
  expect(twice, 'no job completed twice').toEqual([]);
  const ran = new Set((await rows<{ job_id: string }>('SELECT DISTINCT job_id::text AS job_id FROM $schema.side_effects')).map((r) => r.job_id));
  for (const id of ids) expect(ran.has(id), `job ${id} ran`).toBe(true);
}

/** Jobs not succeeded, grouped by state and attempts, with when they may run and their attempts' outcomes. */
async function unfinishedJobs(): Promise<unknown[]> {
  return rows(
    `SELECT j.state, j.attempts, j.crashes, count(*)::int AS jobs,
            min(j.run_at - (extract(epoch from clock_timestamp()) * 1000)::bigint)::bigint AS "runsInMs",
            min(j.lease_expires_at - (extract(epoch from clock_timestamp()) * 1000)::bigint)::bigint AS "leaseEndsInMs",
            (SELECT string_agg(DISTINCT a.outcome || coalesce(': ' || left(a.error, 80), ''), ' | ')
               FROM $schema.attempts a JOIN $schema.jobs k ON k.id = a.job_id
              WHERE k.state = j.state AND k.attempts = j.attempts AND k.state <> 'succeeded') AS outcomes,
            min(left(j.last_error, 120)) AS "lastError"
       FROM $schema.jobs j WHERE j.state <> 'succeeded'
      GROUP BY j.state, j.attempts, j.crashes ORDER BY jobs DESC LIMIT 10`,
  );
}

export const alive = (node: ChildNode) => node.child.exitCode === null && node.child.signalCode === null;

