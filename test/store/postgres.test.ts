/**
 * The PostgreSQL engine: the shared conformance suite against the real server
 * (on migrated schemas reused from test to test, emptied between: test/helpers/pg-schema-pool.ts), plus what only this engine
 * promises: several engines (nodes) on one schema, migrations under an
 * advisory lock, LISTEN/NOTIFY across engines, recovery from dropped
 * connections.
 *
 * PostgreSQL is expected at DROVER_TEST_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/test). When it is unreachable these tests
 * FAIL, in CI and locally alike: the engine is part of the product, and a
 * skipped suite reads as a passing one.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QueueFullError, SchemaTooNewError } from '../../src/core/errors.js';
import type { NewJob } from '../../src/core/types.js';
import { emptyCapReport } from '../../src/core/lease-caps.js';
import { openStore } from '../../src/store/open.js';
import { arrayParam, clientConfig } from '../../src/store/postgres/connection.js';
import { leaseFastSql } from '../../src/store/postgres/lease.js';
import { SETTLE, SETTLE_LEAN, SETTLE_SUCCEEDED } from '../../src/store/postgres/settle-batch.js';
import { START, START_COUNTED, START_COUNTED_BY_ID } from '../../src/store/postgres/start-batch.js';
import { loadMigrations } from '../../src/store/postgres/migrator.js';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { waitFor } from '../helpers/wait-for.js';
import { describeStoreConformance, type StoreFactory } from './conformance.js';
import { describeLeaseOrderConformance } from './lease-order-conformance.js';
import { describeLeaseCapsConformance } from './lease-caps-conformance.js';
import { completedTwice } from '../helpers/pg-attempts.js';
import { pgSchemaPool, pooledEngineFactory } from '../helpers/pg-schema-pool.js';

export const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
admin.on('error', () => undefined);
const schemas = new Set<string>();

function newSchema(): string {
  const schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  schemas.add(schema);
  return schema;
}

async function dropSchema(schema: string): Promise<void> {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  schemas.delete(schema);
}

beforeAll(async () => {
  try {
    await admin.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${PG_URL} (${(error as Error).message}); start it (\`.ci/run\` does) or set DROVER_TEST_PG_URL`,
    );
  }
});

// The conformance suites take a migrated schema left empty by the test before (test/helpers/pg-schema-pool.ts
// says when one is dropped instead); this file's own tests below keep a fresh schema each.
const conformanceSchemas = pgSchemaPool(admin);

afterAll(async () => {
  await conformanceSchemas.drain();
  for (const schema of [...schemas]) await dropSchema(schema);
  await admin.end();
});

const postgresFactory: StoreFactory = pooledEngineFactory(conformanceSchemas, PG_URL);
describeStoreConformance('postgres', postgresFactory);
describeLeaseOrderConformance('postgres', postgresFactory);
describeLeaseCapsConformance('postgres', postgresFactory);

describe('postgres engine', () => {
  const open: PostgresEngine[] = [];
  let schema: string;

  const engineOn = (s: string, over: Partial<Parameters<typeof openPostgresEngine>[0]> = {}) => {
    const engine = openPostgresEngine({ url: PG_URL, schema: s, poolMax: 4, nodeLockWaitMs: 300, ...over });
    open.push(engine);
    return engine;
  };

  const job = (over: Partial<NewJob> = {}): NewJob => ({
    handler: 'h',
    queue: 'default',
    payload: null,
    priority: 0,
    runAt: Date.now(),
    maxAttempts: 3,
    ...over,
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((engine) => engine.close()));
    if (schema) await dropSchema(schema);
  });

  it('is selected by a postgres:// URL and isolated by DROVER_PG_SCHEMA', async () => {
    schema = newSchema();
    const store = await openStore(PG_URL, { postgres: { schema } });
    try {
      expect(store.capabilities).toEqual({ engine: 'postgres', multiNode: true, crossProcessNotify: true, groupCommit: false, sharedRateLimits: true, leaseAtIntake: true, startOnSend: true });
      await store.migrate();
      const { rows } = await admin.query('SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [schema]);
      expect(rows.map((r) => r.tablename)).toEqual(expect.arrayContaining(['jobs', 'attempts', 'events', 'nodes', 'queue_counts', 'schema_migrations']));
    } finally {
      await store.close();
    }
  });

  it('refuses a schema name that is not a plain identifier', () => {
    expect(() => openPostgresEngine({ url: PG_URL, schema: 'Drover; DROP TABLE x' })).toThrow(/postgres.schema/);
  });

  it('coalesces completions made in one tick into one statement, and reports pool and batch counters', async () => {
    schema = newSchema();
    const engine = engineOn(schema);
    await engine.migrate();
    await engine.enqueue(Array.from({ length: 100 }, (_, i) => job({ payload: i })));
    const leased = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 100 }], limit: 100, leaseMs: 30_000 });
    expect(leased).toHaveLength(100);
    const before = engine.stats;
    const results = await Promise.all(leased.map((j) => engine.complete(j.id, j.leaseToken, { ok: j.id })));
    expect(results.every((r) => r.ok)).toBe(true);
    const after = engine.stats;
    expect(after.ops - before.ops).toBe(100);
    expect(after.batches - before.batches).toBeLessThanOrEqual(2);
    expect(engine.poolStats()).toMatchObject({ total: expect.any(Number), idle: expect.any(Number), waiting: 0 });
    expect(engine.poolStats().total).toBeGreaterThan(0);
  });

  it('counts the start marks’ held connection as in use only while a mark is out', async () => {
    schema = newSchema();
    const engine = engineOn(schema);
    await engine.migrate();
    await engine.enqueue([job(), job()]);
    // Leased without marks in the lease, so each start goes through the pipelined marks connection.
    const leased = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 2 }], limit: 2, leaseMs: 30_000 });
    expect(await Promise.all(leased.map((j) => engine.start(j.id, j.leaseToken)))).toEqual([{ ok: true }, { ok: true }]);
    const idle = engine.poolStats();
    // Every connection the engine holds is idle once nothing is out; before, the marks connection read "in use" for good.
    expect(idle.total - idle.idle).toBe(0);
    expect(idle.total).toBeGreaterThan(0);
    expect(idle.total).toBeLessThanOrEqual(idle.max);
  });

  it('marks the jobs started at once in the lease itself: only those count as crashes when their holder dies', async () => {
    schema = newSchema();
    const engine = engineOn(schema);
    await engine.migrate();
    await engine.enqueue([job({ priority: 3 }), job({ priority: 2 }), job({ priority: 1 })]);
    const leased = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 3, start: 2 }], limit: 3, leaseMs: 30_000 });
    expect(leased).toHaveLength(3);
    const [first, second, ahead] = leased;
    // Marked by the lease: answered without a statement; the third (leased ahead) is not started.
    expect(await engine.start(first!.id, first!.leaseToken)).toEqual({ ok: true });
    const reclaimed = await engine.reclaimWorker('w', { poisonAfter: 3 });
    const started = new Map(reclaimed.map((r) => [r.id, r.started]));
    expect(started).toEqual(new Map([[first!.id, true], [second!.id, true], [ahead!.id, false]]));
    expect(await engine.getJob(ahead!.id)).toMatchObject({ state: 'queued', attempts: 0, crashes: 0 });
    expect(await engine.getJob(second!.id)).toMatchObject({ state: 'queued', crashes: 1 });

    // Without `start`, nothing is marked.
    const again = await engine.lease({ workerId: 'w2', handlers: [{ name: 'h', max: 3 }], limit: 3, leaseMs: 30_000 });
    expect(again).toHaveLength(3);
    expect((await engine.reclaimWorker('w2', { poisonAfter: 3 })).every((r) => !r.started)).toBe(true);
  });

  it("passes over a tenant another node is leasing right now as contended, not as a cap refusal, and leases it once that node commits", async () => {
    schema = newSchema();
    const engine = engineOn(schema);
    await engine.migrate();
    await engine.enqueue([job({ tenant: 'busy' }), job({ tenant: 'free' })]);
    const caps = { tenants: { maxActiveLeases: 2, overrides: new Map(), perQueue: new Map() } };
    // Another node mid-lease holds the tenant's lock inside its transaction.
    const other = await admin.connect();
    try {
      await other.query('BEGIN');
      await other.query("SELECT pg_advisory_xact_lock(hashtextextended('drover:tenant:' || $1, 0))", ['busy']);
      const capped = emptyCapReport();
      const first = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 2 }], limit: 2, leaseMs: 30_000, caps, capped });
      expect(first.map((j) => j.tenant)).toEqual(['free']);
      expect(capped.contended).toBe(true);
      expect(capped.tenantByQueue.size).toBe(0);
      await other.query('COMMIT');
    } finally {
      other.release();
    }
    const capped = emptyCapReport();
    const second = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 2 }], limit: 2, leaseMs: 30_000, caps, capped });
    expect(second.map((j) => j.tenant)).toEqual(['busy']);
    expect(capped).toMatchObject({ contended: false, worker: false, key: false });
  });

  it('sends array parameters as literals the server reads back element for element', async () => {
    const text = ['plain', 'a"b', 'back\\slash', 'x,y', '{braces}', 'NULL', '', ' spaced ', 'ünï', null];
    const numbers = [0, 1, 2 ** 53 - 1, -5, null];
    const flags = [true, false, null];
    const { rows } = await admin.query('SELECT $1::text[] AS t, $2::bigint[] AS n, $3::boolean[] AS f, $4::text[] AS e', [
      arrayParam(text),
      arrayParam(numbers),
      arrayParam(flags),
      arrayParam([]),
    ]);
    expect(rows[0]).toEqual({ t: text, n: numbers.map((n) => (n === null ? null : String(n))), f: flags, e: [] });
  });

  it('plans the hot statements, on an empty table, to reach jobs through indexes (the plan is kept as the table grows)', async () => {
    schema = newSchema();
    const engine = engineOn(schema);
    await engine.migrate();
    // A session like the hot path's: generic plans, made now, on an empty table.
    const client = new pg.Client(clientConfig({ url: PG_URL, schema, applicationName: 'drover-plan-test' }, { genericPlans: true }));
    await client.connect();
    try {
      const plans: string[] = [];
      const explain = async (name: string, types: string, sql: string, args: string) => {
        await client.query(`PREPARE ${name}(${types}) AS ${sql}`);
        const { rows } = await client.query(`EXPLAIN EXECUTE ${name}(${args})`);
        plans.push(rows.map((r) => r['QUERY PLAN']).join('\n'));
      };
      await explain('lf', 'text[], int[], int, text, bigint[], text, bigint, text, int[]', leaseFastSql(false), "'{h,g}', '{10,10}', 10, 'x', '{1,1}', 'w', 1, NULL, '{2,0}'");
      await explain('lfx', 'text[], int[], int, text, bigint[], text, bigint, text, int[], text[]', leaseFastSql(true), "'{h}', '{10}', 10, 'x', '{1}', 'w', 1, 'key_1', '{1}', '{paused}'");
      for (const [name, sql] of [['st', SETTLE], ['stl', SETTLE_LEAN]] as const) {
        await explain(name, 'bigint[], text[], text[], text[], text[], bigint[], text[], bigint, boolean[], text', sql, "'{1}', '{t}', '{succeeded}', '{null}', '{NULL}', '{NULL}', '{NULL}', 1, '{false}', 'b'");
      }
      await explain('sts', 'bigint[], text[], text[], bigint, text', SETTLE_SUCCEEDED, "'{1}', '{t}', '{null}', 1, 'b'");
      await explain('sm', 'bigint[], text[]', START, "'{1}', '{t}'");
      await explain('smc', 'bigint[], text[]', START_COUNTED, "'{1}', '{t}'");
      await explain('smi', 'bigint[], text[]', START_COUNTED_BY_ID, "'{1}', '{t}'");
      for (const plan of plans) expect(plan).not.toMatch(/Seq Scan on jobs/);
      // A statement that does need a sequential scan (nodes) is costed past jit_above_cost
      // under enable_seqscan=off; JIT would then compile it for ~300 ms on every heartbeat tick.
      expect((await client.query("SELECT current_setting('jit') AS jit")).rows[0].jit).toBe('off');
    } finally {
      await client.end();
    }
  });

  describe('migrations', () => {
    it('several engines migrating at once apply each migration once', async () => {
      schema = newSchema();
      const engines = Array.from({ length: 4 }, () => engineOn(schema));
      const results = await Promise.all(engines.map((e) => e.migrate()));
      const latest = loadMigrations().length;
      expect(results.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
      for (const r of results) expect(r.current).toBe(latest);
    });

    it('refuses a schema newer than this binary, and checks without applying when asked', async () => {
      schema = newSchema();
      const engine = engineOn(schema);
      await expect(engine.migrate({ apply: false })).rejects.toMatchObject({ code: 'store_unavailable' });
      await engine.migrate();
      expect((await engine.migrate({ apply: false })).applied).toEqual([]);
      await admin.query(`INSERT INTO ${schema}.schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`);
      const migrating = engine.migrate();
      await expect(migrating).rejects.toBeInstanceOf(SchemaTooNewError);
      await expect(migrating).rejects.toMatchObject({ extensions: { found: 999, known: loadMigrations().length } });
    });
  });

  describe('several engines on one schema (nodes)', () => {
    it('never hand out the same job twice, and share the work', async () => {
      schema = newSchema();
      const a = engineOn(schema);
      const b = engineOn(schema);
      await a.migrate();
      await a.enqueue(Array.from({ length: 500 }, (_, i) => job({ payload: i })));
      const lease = (engine: PostgresEngine, worker: string) =>
        engine.lease({ workerId: worker, handlers: [{ name: 'h', max: 25 }], limit: 25, leaseMs: 30_000 });
      const ids: string[] = [];
      for (let round = 0; round < 20 && ids.length < 500; round++) {
        const batches = await Promise.all([lease(a, 'a1'), lease(a, 'a2'), lease(b, 'b1'), lease(b, 'b2')]);
        ids.push(...batches.flat().map((j) => j.id));
      }
      expect(ids).toHaveLength(500);
      expect(new Set(ids).size).toBe(500);
    });

    it('hold a concurrency key across engines', async () => {
      schema = newSchema();
      const engines = [engineOn(schema), engineOn(schema), engineOn(schema)];
      await engines[0]!.migrate();
      await engines[0]!.enqueue(Array.from({ length: 30 }, () => job({ concurrencyKey: 'tenant', concurrencyLimit: 2 })));
      const leased = (
        await Promise.all(
          engines.flatMap((engine, i) =>
            [0, 1, 2].map((w) => engine.lease({ workerId: `n${i}w${w}`, handlers: [{ name: 'h', max: 5 }], limit: 5, leaseMs: 30_000 })),
          ),
        )
      ).flat();
      expect(leased.length).toBeLessThanOrEqual(2);
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.jobs WHERE state = 'running'`);
      expect(rows[0].n).toBe(leased.length);
      // Finishing one frees one slot, whichever engine looks next.
      expect(leased.length).toBe(2);
      await engines[1]!.complete(leased[0]!.id, leased[0]!.leaseToken, null);
      const next = await engines[2]!.lease({ workerId: 'x', handlers: [{ name: 'h', max: 5 }], limit: 5, leaseMs: 30_000 });
      expect(next).toHaveLength(1);
    });

    it('hold tenant caps cluster-wide while two engines drain concurrently (sampled at every lease), and a worker id\'s cap across engines', { timeout: 60_000 }, async () => {
      schema = newSchema();
      const engines = [engineOn(schema, { poolMax: 6 }), engineOn(schema, { poolMax: 6 })];
      await engines[0]!.migrate();
      const caps: Record<string, number> = { a: 3, b: 5, c: 3 };
      for (const tenant of Object.keys(caps)) {
        await engines[0]!.enqueue(Array.from({ length: 40 }, (_, i) => job({ tenant, handler: i % 2 === 0 ? 'h' : 'g', payload: i })));
      }
      const tenants = { maxActiveLeases: 3, overrides: new Map([['b', 5]]), perQueue: new Map<string, number>() };
      const peak: Record<string, number> = {};
      let done = 0;
      const worker = async (engine: PostgresEngine, id: string) => {
        const deadline = Date.now() + 45_000;
        while (done < 120 && Date.now() < deadline) {
          const leased = await engine.lease({ workerId: id, handlers: [{ name: 'h', max: 2 }, { name: 'g', max: 2 }], limit: 3, leaseMs: 30_000, caps: { tenants } });
          const { rows } = await admin.query(`SELECT tenant, count(*)::int AS n FROM ${schema}.jobs WHERE state = 'running' GROUP BY tenant`);
          for (const r of rows) peak[r.tenant] = Math.max(peak[r.tenant] ?? 0, r.n);
          if (leased.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
          for (const j of leased) {
            expect((await engine.complete(j.id, j.leaseToken, null)).ok).toBe(true);
            done++;
          }
        }
      };
      await Promise.all(engines.flatMap((engine, n) => [0, 1, 2].map((w) => worker(engine, `n${n}w${w}`))));
      expect(done).toBe(120);
      for (const [tenant, cap] of Object.entries(caps)) expect(peak[tenant], tenant).toBeLessThanOrEqual(cap);
      // Several workers on two engines: the capped tenants were each at their cap at some point.
      expect(peak.b).toBeGreaterThan(3);

      // One worker id whose lease calls land on both engines at once: its cap is cluster-wide too.
      await engines[0]!.enqueue(Array.from({ length: 20 }, () => job()));
      const same = (
        await Promise.all(engines.flatMap((engine) => [0, 1, 2].map(() => engine.lease({ workerId: 'roaming', keyId: 'k', handlers: [{ name: 'h', max: 5 }], limit: 5, leaseMs: 30_000, caps: { worker: 4, key: 6 } }))))
      ).flat();
      expect(same).toHaveLength(4);
    });

    it('coalesce concurrent plain enqueues into shared statements; each call gets its own jobs, and an overflowing batch is replayed call by call', async () => {
      schema = newSchema();
      const engine = engineOn(schema);
      await engine.migrate();
      const before = engine.enqueueStats;
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => engine.enqueue([job({ payload: { i } }), job({ payload: { i, second: true } })])));
      results.forEach((pair, i) => expect(pair.map((r) => r.job.payload)).toEqual([{ i }, { i, second: true }]));
      expect(new Set(results.flat().map((r) => r.job.id)).size).toBe(100);
      const after = engine.enqueueStats;
      expect(after.calls - before.calls).toBe(50);
      expect(after.statements - before.statements).toBeLessThan(50);

      // maxDepth 107 with 100 in: of 10 concurrent single enqueues, 7 get in, each refusal is its own.
      const limits = { queueLimits: new Map([['default', { maxDepth: 107 }]]) };
      const settled = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => engine.enqueue([job({ payload: { late: i } })], limits)));
      expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
      for (const r of settled) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(QueueFullError);
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.jobs`);
      expect(rows[0].n).toBe(107);
    });

    it('hold a queue limit across engines', async () => {
      schema = newSchema();
      const a = engineOn(schema);
      const b = engineOn(schema);
      await a.migrate();
      const limits = { queueLimits: new Map([['default', { maxDepth: 7 }]]) };
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).enqueue([job({ payload: i })], limits)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(QueueFullError);
    });

    it('hold a rate limit window across engines: one sliding log per scope, pruned once it has expired', async () => {
      schema = newSchema();
      const engines = [engineOn(schema), engineOn(schema), engineOn(schema)];
      await engines[0]!.migrate();
      const policy = { limit: 5, periodMs: 1_000 };
      // 30 starts asked at once from three engines: five are taken, the rest told when.
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => engines[i % 3]!.takeRateStart('["h",""]', policy, 10_000 + i)));
      expect(answers.filter((a) => a.ok)).toHaveLength(5);
      for (const a of answers) if (!a.ok) expect(a.retryAt).toBeGreaterThanOrEqual(11_000);
      // Another scope has its own window.
      expect(await engines[1]!.takeRateStart('["h","tenant-b"]', policy, 10_100)).toEqual({ ok: true });
      // The first start leaves the window when the period has passed since it.
      const firstOk = Math.min(...answers.map((a, i) => (a.ok ? 10_000 + i : Infinity)));
      expect(await engines[2]!.takeRateStart('["h",""]', policy, firstOk + 999)).toMatchObject({ ok: false, retryAt: firstOk + 1_000 });
      expect(await engines[2]!.takeRateStart('["h",""]', policy, firstOk + 1_000)).toEqual({ ok: true });
      // Rows whose last start is older than their period are pruned.
      const rows = async () => (await admin.query(`SELECT scope FROM ${schema}.rate_windows ORDER BY scope`)).rows.map((r) => r.scope);
      expect(await rows()).toHaveLength(2);
      await engines[0]!.prune({ finishedBefore: 0, deadBefore: 0, eventsBefore: 0, batchSize: 100 });
      expect(await rows()).toHaveLength(0);
    });

    it('wake each other through LISTEN/NOTIFY', async () => {
      schema = newSchema();
      const a = engineOn(schema);
      const b = engineOn(schema);
      await a.migrate();
      const seen: string[] = [];
      const named: Array<readonly string[] | undefined> = [];
      b.onWork((queues, handlers) => {
        seen.push(...queues);
        named.push(handlers);
      });
      await waitFor(async () => {
        await a.enqueue([job({ queue: 'ping', handler: 'pinged' })]);
        return seen.includes('ping');
      }, { timeoutMs: 5_000, intervalMs: 50, message: 'engine b hears about engine a\'s job' });
      // The notice names the job's handler, so b leases for that handler only.
      expect(named.filter((h) => h !== undefined)).toContainEqual(['pinged']);

      // Too many handlers to list within NOTIFY's 8000 bytes: "any handler", never a partial list.
      named.length = 0;
      const many = Array.from({ length: 200 }, (_, i) => job({ queue: 'ping', handler: `handler-with-a-long-name-${i}-${'x'.repeat(20)}` }));
      await a.enqueue(many);
      await waitFor(() => named.includes(undefined), { timeoutMs: 5_000, intervalMs: 20, message: 'engine b hears about the large batch' });
      expect(named.flatMap((h) => h ?? []).some((name) => name.startsWith('handler-with'))).toBe(false);
    });

    it('keep a node id to one live process', async () => {
      schema = newSchema();
      const a = engineOn(schema);
      const b = engineOn(schema);
      await a.migrate();
      await a.registerNode({ nodeId: 'n1', incarnation: 'i1' });
      await expect(b.registerNode({ nodeId: 'n1', incarnation: 'i2' })).rejects.toMatchObject({ code: 'config_invalid' });
      await a.close();
      await b.registerNode({ nodeId: 'n1', incarnation: 'i2' });
      expect((await b.listNodes()).map((n) => n.incarnation)).toEqual(['i2']);
    });
  });

  describe('connection loss', () => {
    it('answers 503-style errors while connections are being killed, and recovers without losing work', async () => {
      schema = newSchema();
      const engine = engineOn(schema, { poolMax: 3 });
      await engine.migrate();
      await engine.enqueue(Array.from({ length: 300 }, (_, i) => job({ payload: i })));
      const kill = () =>
        admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", [
          `drover/${schema}`,
        ]);
      let done = 0;
      const errors: unknown[] = [];
      for (let round = 0; round < 400 && done < 300; round++) {
        if (round % 5 === 0) await kill();
        try {
          const jobs = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 20 }], limit: 20, leaseMs: 60_000 });
          const results = await Promise.all(jobs.map((j) => engine.complete(j.id, j.leaseToken, null).catch((e: unknown) => e)));
          done += results.filter((r) => (r as { ok?: boolean }).ok === true).length;
        } catch (error) {
          errors.push(error);
        }
      }
      for (const e of errors) expect(e).toMatchObject({ code: 'store_unavailable' });
      // Leases lost in a killed connection come back once this worker leases again.
      await waitFor(async () => {
        const jobs = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 50 }], limit: 50, leaseMs: 60_000 }).catch(() => []);
        for (const j of jobs) await engine.complete(j.id, j.leaseToken, null).catch(() => undefined);
        const { rows } = await admin.query(`SELECT state, count(*)::int AS n FROM ${schema}.jobs GROUP BY state`);
        return rows.length === 1 && rows[0].state === 'succeeded' && rows[0].n === 300;
      }, { timeoutMs: 20_000, intervalMs: 20, message: 'all 300 jobs succeeded' });
      const { rows } = await admin.query(completedTwice(schema));
      expect(rows).toEqual([]);
    });
  });
});
