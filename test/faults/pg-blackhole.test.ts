/**
 * PostgreSQL paths that fail the hard way, under real `drover start`
 * processes: a black hole (nothing forwarded, nothing closed: no RST), resets,
 * and backends killed by the server. Drover reaches PostgreSQL through a TCP
 * proxy written here (fault-proxy.ts); handlers record their runs through a
 * direct connection, so runs are counted while Drover's path is dead.
 *
 * Invariants: the node never hangs a request past a bound and never exits;
 * readiness says 503 naming the store while it is unreachable and 200 once it
 * answers; a node that cannot reach the store stops heartbeating, so a peer
 * recovers its jobs; after healing every accepted job succeeds exactly once
 * and none stays running.
 *
 * Deadlines are short in the fixture (1 s statement, 1.5 s query, 1 s
 * connect, 250 ms heartbeat, 1.5 s dead-node window) to keep this bounded.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { FaultProxy } from './fault-proxy.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONFIG = fileURLToPath(new URL('./fixtures/pg-faults.config.mjs', import.meta.url));
const KEY = 'drv_pg_faults_test_admin_key_0123456789';
const DEAD_NODE_MS = 1_500;

const db = new pg.Pool({ connectionString: PG_URL, max: 4 });
db.on('error', () => undefined);
const started: ChildNode[] = [];
const proxies: FaultProxy[] = [];
const dirs: string[] = [];
let schema = '';

beforeAll(async () => {
  await db.query('SELECT 1').catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${error.message}); start it or set DROVER_TEST_PG_URL`);
  });
});

afterEach(async () => {
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
});

afterAll(async () => {
  await db.end();
});

async function freshSchema(): Promise<string> {
  schema = `drover_pgf_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  await db.query(`CREATE SCHEMA ${schema}`);
  await db.query(`CREATE TABLE ${schema}.side_effects (job_id bigint NOT NULL, node text NOT NULL, at bigint NOT NULL DEFAULT (extract(epoch from clock_timestamp()) * 1000)::bigint)`);
  return schema;
}

async function proxied(): Promise<{ proxy: FaultProxy; url: string }> {
  const target = new URL(PG_URL);
  const proxy = new FaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
  proxies.push(proxy);
  const via = new URL(PG_URL);
  via.port = String(await proxy.listen());
  return { proxy, url: via.toString() };
}

async function startNode(id: string, databaseUrl: string, env: Record<string, string> = {}): Promise<ChildNode> {
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

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  ms: number;
}

/** One HTTP call with its own bound: a hang fails the test instead of stalling it. */
async function call(node: ChildNode, method: 'GET' | 'POST', path: string, body?: unknown, boundMs = 10_000): Promise<Answer> {
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

const ready = async (node: ChildNode) => (await call(node, 'GET', '/health/ready', undefined, 5_000)).status;

async function enqueue(node: ChildNode, n: number): Promise<string[]> {
  const res = await call(node, 'POST', '/v1/jobs', { jobs: Array.from({ length: n }, (_, i) => ({ handler: 'record', payload: { i } })) });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.jobs.map((j: { id: string }) => j.id);
}

async function rows<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  return (await db.query<R>(sql.replaceAll('$schema', schema), values)).rows;
}

const count = async (sql: string, values: unknown[] = []) => (await rows<{ n: number }>(sql, values))[0]!.n;

/**
 * Every job in the store succeeded exactly once, none is left running or
 * queued, and every acknowledged one (`ids`) is among them and ran. (A request
 * answered 503 may have committed before its answer was lost: such jobs must
 * finish too, so the store's own count is the total.)
 */
async function expectAllSucceededOnce(ids: string[], boundMs: number): Promise<void> {
  await waitFor(async () => (await count("SELECT count(*)::int AS n FROM $schema.jobs WHERE state <> 'succeeded'")) === 0, {
    timeoutMs: boundMs,
    intervalMs: 50,
    message: 'every job in the store succeeded',
  });
  const total = await count('SELECT count(*)::int AS n FROM $schema.jobs');
  expect(total).toBeGreaterThanOrEqual(ids.length);
  const succeeded = new Set((await rows<{ id: string }>("SELECT id::text AS id FROM $schema.jobs WHERE state = 'succeeded'")).map((r) => r.id));
  for (const id of ids) expect(succeeded.has(id), `acknowledged job ${id} succeeded`).toBe(true);
  const succeededAttempts = await rows<{ job_id: number; n: number }>(
    "SELECT job_id, count(*)::int AS n FROM $schema.attempts WHERE outcome = 'succeeded' GROUP BY job_id",
  );
  expect(succeededAttempts).toHaveLength(total);
  expect(succeededAttempts.filter((r) => r.n !== 1), 'no job completed twice').toEqual([]);
  const ran = new Set((await rows<{ job_id: string }>('SELECT DISTINCT job_id::text AS job_id FROM $schema.side_effects')).map((r) => r.job_id));
  for (const id of ids) expect(ran.has(id), `job ${id} ran`).toBe(true);
}

const alive = (node: ChildNode) => node.child.exitCode === null && node.child.signalCode === null;

describe('PostgreSQL path faults', () => {
  it('black hole under a running node: 503s within a bound, never a hang, no crash; healed, every job finishes once', { timeout: 60_000 }, async () => {
    await freshSchema();
    const { proxy, url } = await proxied();
    const node = await startNode('node-a', url, { JOB_MS: '50' });
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 10_000, message: 'node-a ready' });

    const ids = await enqueue(node, 300);
    await waitFor(async () => (await count('SELECT count(DISTINCT job_id)::int AS n FROM $schema.side_effects')) >= 30, {
      timeoutMs: 15_000,
      message: 'some jobs ran',
    });

    proxy.blackhole();
    const lostAt = Date.now();
    await waitFor(async () => (await ready(node)) === 503, { timeoutMs: 8_000, intervalMs: 50, message: '/health/ready is 503' });
    const notReadyMs = Date.now() - lostAt;
    const probe = await call(node, 'GET', '/health/ready');
    expect(probe.body.checks.store.ok).toBe(false);
    expect(probe.body.checks.store.detail).toMatch(/store unreachable|PostgreSQL is unavailable/);

    // Intake, a read and a key-checked route: each refused at once, never a hang.
    for (const [method, path, body] of [
      ['POST', '/v1/jobs', { handler: 'record', payload: {} }],
      ['POST', '/v1/events', { name: 'x', data: {} }],
      ['GET', '/v1/jobs', undefined],
    ] as const) {
      const refused = await call(node, method, path, body, 5_000);
      expect(refused.status, `${method} ${path}`).toBe(503);
      expect(refused.ms, `${method} ${path} answered within 3 s`).toBeLessThan(3_000);
      expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(refused.body.type).toBe('https://drover.dev/problems/store-unavailable');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect((await call(node, 'GET', '/health/live')).status).toBe(200);

    // Hold the outage past the heartbeat window, so the node's own beats have failed.
    await waitFor(() => Date.now() - lostAt > DEAD_NODE_MS * 2, { timeoutMs: 10_000, intervalMs: 50 });
    expect(proxy.blackholed).toBe(true);
    expect(alive(node)).toBe(true);

    proxy.heal();
    const healedAt = Date.now();
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 15_000, intervalMs: 50, message: '/health/ready is 200 again' });
    const readyAgainMs = Date.now() - healedAt;
    await expectAllSucceededOnce(ids, 30_000);
    expect((await call(node, 'POST', '/v1/jobs', { handler: 'record', payload: {} })).status).toBe(202);
    expect(alive(node)).toBe(true);
    console.log(`[pg-blackhole] store lost -> readiness 503: ${notReadyMs} ms; healed -> readiness 200: ${readyAgainMs} ms`);
  });

  it('two nodes, one black-holed: the other recovers its jobs within the liveness window; healed, it carries on, nothing completed twice', { timeout: 60_000 }, async () => {
    await freshSchema();
    const { proxy, url } = await proxied();
    const a = await startNode('node-a', url, { JOB_MS: '400' });
    const b = await startNode('node-b', PG_URL, { JOB_MS: '400' });
    // B judges peers only after heartbeating through a whole window itself.
    await waitFor(
      async () => {
        const nodes = await rows<{ node_id: string; started_at: number }>('SELECT node_id, started_at FROM $schema.nodes');
        return nodes.length === 2 && nodes.every((n) => Date.now() - Number(n.started_at) > DEAD_NODE_MS);
      },
      { timeoutMs: 15_000, intervalMs: 50, message: 'both nodes registered for a liveness window' },
    );

    const ids = await enqueue(a, 200);
    await waitFor(async () => (await count("SELECT count(*)::int AS n FROM $schema.jobs WHERE state = 'running' AND worker_id = 'node-a'")) >= 4, {
      timeoutMs: 15_000,
      intervalMs: 10,
      message: 'node-a holds running jobs',
    });

    proxy.blackhole();
    const lostAt = Date.now();
    const held = (await rows<{ id: string }>("SELECT id::text AS id FROM $schema.jobs WHERE state = 'running' AND worker_id = 'node-a'")).map((r) => r.id);
    expect(held.length).toBeGreaterThan(0);
    // Every job node-a held when it went silent runs again on node-b (or has finished there).
    await waitFor(
      async () =>
        (await count(
          `SELECT count(*)::int AS n FROM $schema.jobs WHERE id = ANY($1::bigint[]) AND worker_id = 'node-b' AND state IN ('running', 'succeeded')`,
          [held],
        )) === held.length,
      { timeoutMs: 15_000, intervalMs: 20, message: "node-a's jobs running on node-b" },
    );
    const recoveredMs = Date.now() - lostAt;
    expect(recoveredMs).toBeLessThan(DEAD_NODE_MS + 5_000);
    // Taken by dead-node detection (a crash attempt by node-a), not by lease expiry.
    expect(await count("SELECT count(*)::int AS n FROM $schema.attempts WHERE worker_id = 'node-a' AND outcome = 'crashed'")).toBeGreaterThan(0);
    expect(await count("SELECT count(*)::int AS n FROM $schema.attempts WHERE outcome = 'lease_expired'")).toBe(0);

    await waitFor(() => Date.now() - lostAt > 4_000, { timeoutMs: 10_000, intervalMs: 50 });
    expect(alive(a)).toBe(true);
    proxy.heal();
    const healedAt = Date.now();
    await waitFor(async () => (await ready(a)) === 200, { timeoutMs: 15_000, intervalMs: 50, message: 'node-a ready again' });
    // node-a registers again and leases new work.
    const more = await enqueue(b, 100);
    await expectAllSucceededOnce([...ids, ...more], 40_000);
    expect(
      await count("SELECT count(*)::int AS n FROM $schema.attempts WHERE worker_id = 'node-a' AND outcome = 'succeeded' AND started_at > $1", [healedAt]),
      'node-a carried on leasing after healing',
    ).toBeGreaterThan(0);
    expect(alive(a) && alive(b)).toBe(true);
    console.log(`[pg-blackhole] node-a silent -> its ${held.length} jobs running on node-b: ${recoveredMs} ms`);
  });

  it('connections reset and backends terminated under load: the process keeps running, counts the errors and recovers', { timeout: 60_000 }, async () => {
    await freshSchema();
    const { proxy, url } = await proxied();
    const node = await startNode('node-a', url, { JOB_MS: '20' });
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 10_000, message: 'node-a ready' });
    const ids = await enqueue(node, 200);
    // Intake keeps transactions open while connections die under it.
    const intake = (async () => {
      const accepted: string[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await call(node, 'POST', '/v1/jobs', { handler: 'record', payload: { extra: i } }).catch(() => null);
        if (res?.status === 202) accepted.push(res.body.id ?? res.body.jobs?.[0]?.id);
      }
      return accepted;
    })();
    let terminated = 0;
    let reset = 0;
    for (let round = 0; round < 6; round++) {
      if (round % 2 === 0) reset += proxy.reset();
      else {
        terminated += await count("SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1", [`drover/${schema}`]);
      }
      // Pacing the faults (not waiting for a condition): let the node reconnect and get busy in between.
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(reset + terminated, 'connections were really killed').toBeGreaterThan(0);
    const extra = (await intake).filter(Boolean);
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 15_000, intervalMs: 50, message: 'ready again' });
    await expectAllSucceededOnce([...ids, ...extra], 30_000);
    expect(alive(node), `node exited: ${node.stderr.join('')}`).toBe(true);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    const errors = [...metrics.matchAll(/^drover_store_connection_errors_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(errors).toBeGreaterThan(0);
    expect(node.stdout.some((line) => line.includes('store connection failed and was discarded'))).toBe(true);
  });
});
