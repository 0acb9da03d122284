/**
 * On PostgreSQL a job enqueued into an idle node is leased, and marked
 * started, by its own insert (Dispatcher.claimAtIntake, intake.ts
 * LEASE_VALUES): it starts after one round trip, with no lease after the
 * commit. Only into an idle lane with a free slot for each of the call's due
 * jobs, so nothing queued is overtaken; a job leased so but never started
 * (leasing stopped meanwhile) goes back unspent, never counted as a crash.
 * Real PostgreSQL.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { LeasedJob, NewJob } from '../../src/core/types.js';
import type { Dispatcher } from '../../src/runtime/dispatcher.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import type { PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { dispatcherOn } from '../helpers/dispatcher.js';
import { pgEnginesPerTest } from '../helpers/pg-engines.js';
import { waitFor } from '../helpers/wait-for.js';

const { admin, migrated } = pgEnginesPerTest();
let dispatcher: Dispatcher | null = null;

afterEach(async () => {
  dispatcher?.stopLeasing();
  await dispatcher?.whenIdle();
  dispatcher = null;
});

const job = (i: number, extra: Partial<NewJob> = {}): NewJob => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3, ...extra });

/** A started dispatcher whose first lease (at start) found nothing: its lanes are idle. `run` is the handler. */
async function idleNode(engine: PostgresEngine, run: (ctx: { job: { id: string } }) => unknown, concurrency = 2) {
  const leases: LeaseRequest[] = [];
  const lease = (request: LeaseRequest): Promise<LeasedJob[]> => {
    leases.push(request);
    return engine.lease(request);
  };
  const config = resolveConfig({ handlers: [{ name: 'h', concurrency, run }], databaseUrl: 'postgres://unused' }, {}, {});
  dispatcher = dispatcherOn(engine, config.handlers, lease);
  dispatcher.start();
  // Idle once its first lease came back short: a claim then succeeds (its slot given back as after a failed insert).
  await waitFor(
    () => {
      const probe = leases.length >= 1 ? dispatcher!.claimAtIntake([job(0)], Date.now()) : null;
      if (probe) dispatcher!.startClaimed(probe, []);
      return probe !== null;
    },
    { timeoutMs: 5_000 },
  );
  return { dispatcher, leases };
}

describe('dispatcher: jobs leased by their insert (PostgreSQL)', () => {
  it('an idle node starts an enqueued job from its insert, marked started, with no lease after the commit', async () => {
    const { engine, schema } = await migrated();
    const ran: string[] = [];
    const { dispatcher, leases } = await idleNode(engine, (ctx) => void ran.push(ctx.job.id));
    const leasesBefore = leases.length;

    const jobs = [job(1), job(2)];
    const claim = dispatcher.claimAtIntake(jobs, Date.now());
    expect(claim?.lease.leaseMs.every((ms) => ms !== null && ms > 0)).toBe(true);
    const results = await engine.enqueue(jobs, { lease: claim!.lease });
    expect(results.every((r) => r.leased?.state === 'running' && r.leased.attempts === 1)).toBe(true);
    // Committed leased and marked, before the dispatcher has done anything with them.
    const { rows: stored } = await admin.query(`SELECT state, attempts, lease_seq, started_seq, worker_id FROM ${schema}.jobs ORDER BY id`);
    expect(stored).toEqual([
      { state: 'running', attempts: 1, lease_seq: 1, started_seq: 1, worker_id: 'w' },
      { state: 'running', attempts: 1, lease_seq: 1, started_seq: 1, worker_id: 'w' },
    ]);

    dispatcher.startClaimed(claim!, results.map((r) => r.leased));
    await waitFor(() => ran.length === 2, { timeoutMs: 5_000 });
    expect(ran.sort()).toEqual(results.map((r) => r.job.id).sort());
    await waitFor(async () => (await engine.listJobs({ handler: 'h', limit: 10 })).every((j) => j.state === 'succeeded'), { timeoutMs: 5_000 });
    for (const j of await engine.listJobs({ handler: 'h', limit: 10 })) expect(j).toMatchObject({ attempts: 1, crashes: 0 });
    // No lease was needed to start them.
    expect(leases.length).toBe(leasesBefore);
  });

  it('a lane that is busy, has jobs waiting, or lacks a slot for every due job of the call is not claimed', async () => {
    const { engine } = await migrated();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { dispatcher } = await idleNode(engine, () => gate, 1);
    // Two due jobs, one slot: neither is leased by the insert (the second would wait behind the first anyway).
    expect(dispatcher.claimAtIntake([job(1), job(2)], Date.now())).toBeNull();
    // A job due later, or with a concurrency key, is inserted as usual.
    expect(dispatcher.claimAtIntake([job(3, { runAt: Date.now() + 60_000 })], Date.now())).toBeNull();
    expect(dispatcher.claimAtIntake([job(4, { concurrencyKey: 'k' })], Date.now())).toBeNull();
    // The lane itself was open all along: a plain job alone is claimed.
    const plain = dispatcher.claimAtIntake([job(5)], Date.now());
    expect(plain?.lanes.map((lane) => lane !== null)).toEqual([true]);
    dispatcher.startClaimed(plain!, []);

    // Jobs queued the usual way wake the lane: it leases, runs one and holds the other; no longer idle.
    await engine.enqueue([job(6), job(7)]);
    dispatcher.wake(['h']);
    await waitFor(() => dispatcher.running.size === 1, { timeoutMs: 5_000 });
    expect(dispatcher.claimAtIntake([job(8)], Date.now())).toBeNull();
    release();
  });

  it('leasing stopped while the insert was out: the job goes back unspent, and runs later as its first attempt', async () => {
    const { engine, schema } = await migrated();
    const ran: string[] = [];
    const { dispatcher } = await idleNode(engine, (ctx) => void ran.push(ctx.job.id));
    const claim = dispatcher.claimAtIntake([job(1)], Date.now())!;
    const [result] = await engine.enqueue([job(1)], { lease: claim.lease });
    expect(result!.leased).toMatchObject({ state: 'running', attempts: 1 });
    dispatcher.stopLeasing();
    // Shutdown hands back what is leased but unstarted: it waits for the claim whose insert is still out.
    let handedBack = false;
    const released = dispatcher.releaseBuffered().then(() => (handedBack = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(handedBack).toBe(false);
    dispatcher.startClaimed(claim, [result!.leased]);
    await released;
    await waitFor(async () => (await engine.getJob(result!.job.id))?.state === 'queued', { timeoutMs: 5_000 });
    expect(ran).toEqual([]);
    expect(await engine.getJob(result!.job.id)).toMatchObject({ attempts: 0, crashes: 0 });

    // A later lease takes it as a fresh lease; its attempt is the first, and no crash is counted for the mark.
    const [again] = await engine.lease({ workerId: 'w2', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
    expect(again).toMatchObject({ id: result!.job.id, attempts: 1 });
    const { rows } = await admin.query(`SELECT lease_seq, started_seq FROM ${schema}.jobs WHERE id = $1`, [result!.job.id]);
    expect(rows[0].started_seq).toBeLessThan(rows[0].lease_seq);
  });
});
