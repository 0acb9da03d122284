/**
 * Start on send (PostgreSQL, `startOnSend`): a job leased ahead whose lease
 * is lost while it waits in the buffer (cancelled, or taken over: its token
 * changed) still starts once its mark is sent, since the node cannot know
 * yet; the mark's answer then aborts the handler through its signal, and
 * nothing is recorded for the attempt, whatever the handler returns. A mark
 * whose statement fails under a running handler is sent once more. A job
 * whose own step suspended it before its mark ran is not a lost lease. Real
 * PostgreSQL, a schema of its own.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { JobContext } from '../../src/core/handler.js';
import type { LeasedJob, NewJob } from '../../src/core/types.js';
import type { Dispatcher } from '../../src/runtime/dispatcher.js';
import { Lifecycle } from '../../src/runtime/lifecycle.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { dispatcherOn } from '../helpers/dispatcher.js';
import { PG_URL } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
const JOBS = 30;
let engine: PostgresEngine | null = null;
let dispatcher: Dispatcher | null = null;
const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });

afterEach(async () => {
  dispatcher?.stopLeasing();
  await dispatcher?.whenIdle();
  await dispatcher?.releaseBuffered();
  await engine?.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});
afterAll(() => admin.end());

const job = (): NewJob => ({ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: Date.now(), maxAttempts: 3 });

/**
 * The engine's own lease, which hands `pick` one job of the first lease that
 * took many ahead: a few marks past the jobs the lease marks itself (once
 * the handler's run time is known, its first `start` jobs), so its start is
 * a mark of its own.
 */
function leasePicking(pick: (victim: LeasedJob, next: LeasedJob) => Promise<void>): (request: LeaseRequest) => Promise<LeasedJob[]> {
  let picked = false;
  return async (request) => {
    const leased = await engine!.lease(request);
    const told = request.handlers[0]?.start ?? 0;
    if (!picked && leased.length > told + 4) {
      picked = true;
      await pick(leased[told + 3]!, leased[told + 4]!);
    }
    return leased;
  };
}

/** A lifecycle for the dispatcher, and the ids of the jobs it reports stale and succeeded. */
function recordJobs(): { lifecycle: Lifecycle; stale: string[]; succeeded: string[] } {
  const lifecycle = new Lifecycle();
  const stale: string[] = [];
  const succeeded: string[] = [];
  lifecycle.on('job:stale', ({ job }) => void stale.push(job.id));
  lifecycle.on('job:succeeded', ({ job }) => void succeeded.push(job.id));
  return { lifecycle, stale, succeeded };
}

/** Hold a job's row in an open transaction on `client`: its start mark then waits on the server until COMMIT. */
async function lockRow(client: pg.Client, id: string): Promise<void> {
  await client.query('BEGIN');
  await client.query(`SELECT 1 FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [id]);
}

describe('dispatcher: start on send', () => {
  it.each(['cancelled', 'taken over'] as const)('a job whose lease was lost in the buffer (%s) is aborted once its mark answers, and nothing is recorded for it', { timeout: 30_000 }, async (how) => {
    engine = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    expect(engine.capabilities.startOnSend).toBe(true);
    await engine.migrate();
    await engine.enqueue(Array.from({ length: JOBS }, job));

    let victim: LeasedJob | null = null;
    const seen: { started: boolean; aborted: string | null } = { started: false, aborted: null };
    const run = async (ctx: JobContext) => {
      if (ctx.job.id !== victim?.id) return;
      seen.started = true;
      // Bounded: an abort that never came shows as null.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5_000);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      seen.aborted = ctx.signal.aborted ? (ctx.signal.reason as Error).name : null;
      return 'returned anyway';
    };
    const config = resolveConfig({ handlers: [{ name: 'h', concurrency: 1, run }], databaseUrl: ':memory:' }, {}, {});
    // Lose the picked job's lease before it starts.
    const lease = leasePicking(async (picked) => {
      victim = picked;
      if (how === 'cancelled') expect(await engine!.cancel(picked.id)).toMatchObject({ state: 'cancelled' });
      else await admin.query(`UPDATE ${schema}.jobs SET lease_token = 'taken-over' WHERE id = $1`, [picked.id]);
    });
    const lifecycle = new Lifecycle();
    const stale: Array<{ id: string; op: string }> = [];
    const succeeded: string[] = [];
    lifecycle.on('job:stale', ({ job, op }) => void stale.push({ id: job.id, op }));
    lifecycle.on('job:succeeded', ({ job }) => void succeeded.push(job.id));
    dispatcher = dispatcherOn(engine, config.handlers, lease, { lifecycle });
    dispatcher.start();

    await waitFor(() => succeeded.length === JOBS - 1 && dispatcher!.running.size === 0, { timeoutMs: 20_000, message: 'every other job succeeded and the victim ended' });
    // It began before its mark's answer (a mark that waited would never have let it run), and the answer aborted it.
    expect(seen).toEqual({ started: true, aborted: 'StartLeaseLost' });
    const id = victim!.id;
    expect(stale).toEqual([{ id, op: 'start' }]);
    expect(succeeded).not.toContain(id);
    // Nothing written for it: the row is as the cancel or the takeover left it.
    const { rows } = await admin.query(`SELECT state, lease_token, result, started_seq = lease_seq AS marked FROM ${schema}.jobs WHERE id = $1`, [id]);
    expect(rows[0]).toEqual(how === 'cancelled' ? { state: 'cancelled', lease_token: null, result: null, marked: false } : { state: 'running', lease_token: 'taken-over', result: null, marked: false });
    expect((await engine.getAttempts(id)).map((a) => a.outcome)).not.toContain('succeeded');
  });

  it('marks a running job once more when its mark sent ahead fails, and records its outcome', { timeout: 30_000 }, async () => {
    engine = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    await engine.migrate();
    await engine.enqueue(Array.from({ length: JOBS }, job));

    let victim: LeasedJob | null = null;
    // Holds the victim's row from its lease until its handler runs: its mark is on the server, not committed.
    const lock = new pg.Client({ connectionString: PG_URL });
    await lock.connect();
    let ran = false;
    const run = async (ctx: JobContext) => {
      if (ctx.job.id !== victim?.id) return;
      ran = true;
      // The marks connection dies under the blocked mark; then the lock goes, and the second mark can commit.
      // The handler starts once the mark is written, which can be before the server waits on the lock.
      const blockedMark = "FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%SET started_seq = j.lease_seq%' AND wait_event_type = 'Lock'";
      await waitFor(async () => (await admin.query(`SELECT pid ${blockedMark}`, [`drover/${schema}`])).rowCount === 1, { timeoutMs: 10_000, message: 'the mark waits on the locked row' });
      const { rows } = await admin.query(`SELECT pg_terminate_backend(pid) AS gone ${blockedMark}`, [`drover/${schema}`]);
      expect(rows).toEqual([{ gone: true }]);
      await lock.query('COMMIT');
      return 'done';
    };
    const config = resolveConfig({ handlers: [{ name: 'h', concurrency: 1, run }], databaseUrl: ':memory:' }, {}, {});
    const lease = leasePicking(async (picked) => {
      victim = picked;
      await lockRow(lock, picked.id);
    });
    const { lifecycle, stale, succeeded } = recordJobs();
    dispatcher = dispatcherOn(engine, config.handlers, lease, { lifecycle });
    dispatcher.start();
    try {
      await waitFor(() => succeeded.length === JOBS, { timeoutMs: 20_000, message: 'every job succeeded' });
    } finally {
      await lock.end();
    }
    expect(ran).toBe(true);
    expect(stale).toEqual([]);
    const { rows } = await admin.query(`SELECT state, result, started_seq = lease_seq AS marked FROM ${schema}.jobs WHERE id = $1`, [victim!.id]);
    expect(rows[0]).toEqual({ state: 'succeeded', result: 'done', marked: true });
  });
  it('a job whose own step suspended it before its mark ran stays suspended, and no lost lease is reported', { timeout: 30_000 }, async () => {
    engine = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    await engine.migrate();
    await engine.enqueue(Array.from({ length: JOBS }, job));

    // A's row is locked from its lease on, so A's mark waits on the server; B's mark, next on the marks
    // connection, waits behind it, while B's handler (started on send) suspends B in a sleep step.
    let blocked: LeasedJob | null = null;
    let sleeper: LeasedJob | null = null;
    const lock = new pg.Client({ connectionString: PG_URL });
    await lock.connect();
    const run = async (ctx: JobContext) => {
      if (ctx.job.id === sleeper?.id) await ctx.step.sleep('nap', 60_000);
    };
    const config = resolveConfig({ handlers: [{ name: 'h', concurrency: 1, run }], databaseUrl: ':memory:' }, {}, {});
    const lease = leasePicking(async (picked, next) => {
      blocked = picked;
      sleeper = next;
      await lockRow(lock, picked.id);
    });
    const { lifecycle, stale, succeeded } = recordJobs();
    const steps = { store: engine, lifecycle, limits: config.durable, clock: Date.now, onWakeAt: () => undefined };
    dispatcher = dispatcherOn(engine, config.handlers, lease, { lifecycle, steps });
    dispatcher.start();
    const stateOf = async (id: string) => (await admin.query<{ state: string }>(`SELECT state FROM ${schema}.jobs WHERE id = $1`, [id])).rows[0]?.state;
    try {
      await waitFor(async () => sleeper !== null && (await stateOf(sleeper.id)) === 'suspended', { timeoutMs: 20_000, message: 'the sleeper suspended itself while the blocked mark waited' });
      // B's mark has not run yet: it is behind A's on the one marks connection. Let A's go; B's then finds B suspended.
      await lock.query('COMMIT');
      await waitFor(() => succeeded.length === JOBS - 1 && dispatcher!.running.size === 0, { timeoutMs: 20_000, message: 'every other job succeeded' });
    } finally {
      await lock.end();
    }
    expect(succeeded).toContain(blocked!.id);
    expect(await stateOf(sleeper!.id)).toBe('suspended');
    expect(stale).toEqual([]);
  });
});
