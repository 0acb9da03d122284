/**
 * The dispatcher's side of start marks written by the lease (PostgreSQL): it
 * asks the store to mark only the jobs that go straight to a free slot, and a
 * job so marked that cannot start after all (its slot limit shrank while the
 * lease was out) is handed back unspent at once, so no crash is ever counted
 * for it. Real PostgreSQL, a schema of its own.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { NewJob } from '../../src/core/types.js';
import type { Dispatcher } from '../../src/runtime/dispatcher.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { dispatcherOn } from '../helpers/dispatcher.js';
import { PG_URL } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
let engine: PostgresEngine | null = null;
let dispatcher: Dispatcher | null = null;

afterEach(async () => {
  dispatcher?.stopLeasing();
  await dispatcher?.whenIdle();
  await engine?.close();
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

const job = (): NewJob => ({ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: Date.now(), maxAttempts: 3 });

describe('dispatcher: start marks in the lease', () => {
  it('asks to mark only the jobs for free slots, and hands back at once a marked job whose slot vanished meanwhile', async () => {
    engine = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    await engine.migrate();
    await engine.enqueue([job(), job(), job()]);
    const ran: string[] = [];
    const config = resolveConfig({ handlers: [{ name: 'h', concurrency: 2, run: (ctx: { job: { id: string } }) => void ran.push(ctx.job.id) }], databaseUrl: ':memory:' }, {}, {});
    let slots = Number.POSITIVE_INFINITY;
    const requests: LeaseRequest[] = [];
    // The slot limit drops to one while the first lease is out (a breaker going half-open, say).
    const lease = async (request: LeaseRequest) => {
      requests.push(request);
      const leased = await engine!.lease(request);
      if (requests.length === 1) slots = 1;
      return leased;
    };
    dispatcher = dispatcherOn(engine, config.handlers, lease, { slotLimit: () => slots });
    // As the runtime does: work announced by the store (a job handed back, say) wakes the dispatcher.
    const unsubscribe = engine.onWork(() => dispatcher?.wake());
    dispatcher.start();
    // Every job ran and its outcome is written (a handler's return frees its slot before the write).
    await waitFor(async () => ran.length === 3 && (await engine!.listJobs({ handler: 'h', limit: 10 })).every((j) => j.state === 'succeeded'), { timeoutMs: 10_000 });
    // Two free slots, nothing buffered: two of the first lease are to start at once.
    expect(requests[0]!.handlers).toEqual([expect.objectContaining({ name: 'h', max: 2, start: 2 })]);
    const [first, second] = (await engine.listJobs({ handler: 'h', limit: 10 })).sort((a, b) => Number(a.id) - Number(b.id));
    // The second job of that lease was marked but had no slot: it went back unspent and ran on a later lease.
    const attempts = await engine.getAttempts(second!.id);
    expect(attempts.map((a) => a.outcome)).toEqual(['released', 'succeeded']);
    expect(await engine.getJob(second!.id)).toMatchObject({ state: 'succeeded', attempts: 1, crashes: 0 });
    expect(await engine.getJob(first!.id)).toMatchObject({ state: 'succeeded', attempts: 1, crashes: 0 });
    unsubscribe();
  });
});
