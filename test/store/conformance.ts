/**
 * The store conformance suite: every guarantee of `StorageEngine`, tested
 * through the interface only, so it runs unchanged against every engine.
 *
 * Time is an injected fake clock (`now`), never a sleep. Notifications, which
 * an engine may deliver asynchronously, are awaited with a bounded poll.
 *
 * @example
 * describeStoreConformance('sqlite', async (clock) => {
 *   const engine = await openSqliteEngine({ path: join(dir, 'drover.db'), clock });
 *   return { engine, cleanup: () => engine.close() };
 * });
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueueFullError } from '../../src/core/errors.js';
import { JOB_STATES, type ApiKeyRow, type AuditEntry, type JobRow, type LeasedJob, type NewJob } from '../../src/core/types.js';
import type { AuditSeal, LeaseRequest, StorageEngine } from '../../src/store/engine.js';
import { instrumentStore } from '../../src/store/instrumented.js';
import { capabilityMismatches } from '../../src/store/roles/capabilities.js';
import { sharedRateLimitsOf } from '../../src/store/roles/shared-rate-limits.js';
import type { HistogramSeries } from '../../src/obs/series.js';

export type StoreFactory = (clock: () => number) => Promise<{ engine: StorageEngine; cleanup(): Promise<void> }>;

const T0 = 1_700_000_000_000;

/** Poll until `check` passes or ~2 s elapse (for asynchronous notifications). */
async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Register the suite. `factory` opens a fresh, empty store (migrated or not:
 * the suite calls `migrate()` itself) that reads time from `clock`.
 */
/** One attempt as `getAttempts` answers it. */
function attemptRow(jobId: string, attempt: number, workerId: string, startedAt: number, endedAt: number | null, outcome: string, error: string | null = null) {
  return { jobId, attempt, workerId, startedAt, endedAt, outcome, error };
}

export function describeStoreConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}`, () => {
    let now = T0;
    const clock = () => now;
    let engine: StorageEngine;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      now = T0;
      ({ engine, cleanup } = await factory(clock));
      await engine.migrate();
    });

    afterEach(async () => {
      await cleanup();
    });

    const newJob = (over: Partial<NewJob> = {}): NewJob => ({
      handler: 'h',
      queue: 'default',
      payload: { n: 1 },
      priority: 0,
      runAt: now,
      maxAttempts: 3,
      ...over,
    });

    const enqueueOne = async (over: Partial<NewJob> = {}): Promise<JobRow> => {
      const [result] = await engine.enqueue([newJob(over)]);
      return result!.job;
    };

    const lease = (over: Partial<LeaseRequest> = {}): Promise<LeasedJob[]> =>
      engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 100 }], limit: 100, leaseMs: 30_000, ...over });

    const leaseOne = async (over: Partial<LeaseRequest> = {}): Promise<LeasedJob> => {
      const jobs = await lease({ limit: 1, ...over });
      expect(jobs).toHaveLength(1);
      return jobs[0]!;
    };

    /** Mark leased jobs started, as the dispatcher does before running a handler. */
    const markStarted = async (...jobs: LeasedJob[]): Promise<void> => {
      for (const job of jobs) expect((await engine.start(job.id, job.leaseToken)).ok).toBe(true);
    };

    /** Enqueue one job, lease it and mark it started (the only due job, in tests that use this). */
    const startJob = async (over: Partial<LeaseRequest> = {}, job: Partial<NewJob> = {}): Promise<LeasedJob> => {
      await enqueueOne(job);
      const leased = await leaseOne(over);
      await markStarted(leased);
      return leased;
    };

    const getJob = async (id: string): Promise<JobRow> => {
      const job = await engine.getJob(id);
      expect(job).not.toBeNull();
      return job!;
    };

    const countJobs = async (): Promise<number> => (await engine.listJobs({ limit: 10_000 })).length;

    describe('lifecycle', () => {
      it('migrate is idempotent: a second run applies nothing', async () => {
        const status = await engine.migrate();
        expect(status.applied).toEqual([]);
        expect(status.current).toBe(status.latest);
        expect(status.latest).toBeGreaterThan(0);
      });

      it('answers ping and declares its capabilities', async () => {
        await engine.ping();
        expect(['sqlite', 'postgres']).toContain(engine.capabilities.engine);
      });

      it('declares exactly the optional methods it implements, and so does its instrumented wrapper', () => {
        expect(capabilityMismatches(engine)).toEqual([]);
        const timer = (() => ({ observe: () => undefined })) as unknown as (op: string) => HistogramSeries;
        expect(capabilityMismatches(instrumentStore(engine, { timer }))).toEqual([]);
      });

      it('shared rate limits (when declared): one window per scope, refused with the time it reopens', async () => {
        const shared = sharedRateLimitsOf(engine);
        if (!shared) {
          // A single-node engine: the runtime keeps the window in memory (nothing to share).
          expect(engine.capabilities.sharedRateLimits).toBe(false);
          return;
        }
        const policy = { limit: 2, periodMs: 1_000 };
        expect(await shared.takeRateStart('["h",""]', policy, now)).toEqual({ ok: true });
        expect(await shared.takeRateStart('["h",""]', policy, now + 10)).toEqual({ ok: true });
        expect(await shared.takeRateStart('["h",""]', policy, now + 20)).toEqual({ ok: false, retryAt: now + 1_000 });
        expect(await shared.takeRateStart('["h","other"]', policy, now + 20)).toEqual({ ok: true });
        expect(await shared.takeRateStart('["h",""]', policy, now + 1_000)).toEqual({ ok: true });
      });
    });

    describe('enqueue', () => {
      it('inserts a due job as queued with every field set', async () => {
        const job = await enqueueOne({
          payload: { to: 'a@example.com', tags: ['x'] },
          priority: 5,
          maxAttempts: 4,
          concurrencyKey: 'k',
          concurrencyLimit: 2,
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        });
        expect(typeof job.id).toBe('string');
        expect(job).toMatchObject({
          handler: 'h',
          queue: 'default',
          state: 'queued',
          payload: { to: 'a@example.com', tags: ['x'] },
          eventId: null,
          priority: 5,
          runAt: T0,
          attempts: 0,
          maxAttempts: 4,
          crashes: 0,
          idempotencyKey: null,
          concurrencyKey: 'k',
          concurrencyLimit: 2,
          leaseToken: null,
          leaseExpiresAt: null,
          leaseKeyId: null,
          workerId: null,
          lastError: null,
          deadReason: null,
          result: null,
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          createdAt: T0,
          updatedAt: T0,
          finishedAt: null,
        });
        expect(await engine.getJob(job.id)).toEqual(job);
      });

      it('returns exactly the row a read gives, with every optional field set and with none', async () => {
        const full = newJob({
          payload: { to: 'a@example.com', tags: ['x'], nested: { n: 1.5, f: false, z: null } },
          priority: 7,
          runAt: T0 + 60_000,
          maxAttempts: 9,
          idempotencyKey: 'idem-1',
          concurrencyKey: 'ck',
          concurrencyLimit: 3,
          eventId: 'ev-direct',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          tenant: 't1',
          priorityMs: 1000,
        });
        const bare: NewJob = { handler: 'h', queue: 'default', payload: null, priority: 0, runAt: T0, maxAttempts: 1 };
        const results = await engine.enqueue([full, bare]);
        for (const { job, created } of results) {
          expect(created).toBe(true);
          const read = await engine.getJob(job.id);
          expect(job).toStrictEqual(read);
          // Same keys in the same order: API answers serialise the row as it is.
          expect(JSON.stringify(job)).toBe(JSON.stringify(read));
        }
        expect(results.map((r) => r.job.state)).toEqual(['scheduled', 'queued']);
      });

      it('answers a long batch mixing plain, keyed and fair-queue jobs in order, each with the row a read gives', async () => {
        // Engines may insert runs of plain jobs several rows a statement (SQLite: 16): runs of 1, 17 and 33 here.
        const fair = { queueLimits: new Map([['fair', { maxDepth: 1_000, fairness: 'tenant' as const }]]) };
        const plain = (i: number) => newJob({ payload: { i, s: i % 5 === 0 ? 'lone \ud800' : 'ok' }, runAt: i % 3 === 0 ? T0 + 1000 : T0, tenant: i % 4 === 0 ? 't' : null, priority: -0 });
        const jobs: NewJob[] = [
          plain(0),
          newJob({ idempotencyKey: 'k1', payload: 'first' }),
          ...Array.from({ length: 17 }, (_, i) => plain(1 + i)),
          newJob({ queue: 'fair', tenant: 't1' }),
          newJob({ idempotencyKey: 'k1', payload: 'replay' }),
          ...Array.from({ length: 33 }, (_, i) => plain(100 + i)),
        ];
        const results = await engine.enqueue(jobs, fair);
        expect(results.map((r) => r.created)).toEqual(jobs.map((_, i) => i !== 20));
        expect(results[20]!.job).toEqual(results[1]!.job);
        const created = results.filter((r) => r.created).map((r) => Number(r.job.id));
        expect(created).toEqual([...created].sort((a, b) => a - b));
        expect(new Set(created).size).toBe(created.length);
        for (const [i, { job, created: isNew }] of results.entries()) {
          if (!isNew) continue;
          const read = await engine.getJob(job.id);
          expect(JSON.stringify(job)).toBe(JSON.stringify(read));
          if (jobs[i]!.idempotencyKey === undefined && jobs[i]!.queue === 'default') expect((job.payload as { i: number }).i).toBe((jobs[i]!.payload as { i: number }).i);
        }
        expect(await countJobs()).toBe(jobs.length - 1);
      });

      it('inserts a future job as scheduled and a past one as queued', async () => {
        const later = await enqueueOne({ runAt: T0 + 1000 });
        const earlier = await enqueueOne({ runAt: T0 - 1000 });
        expect(later.state).toBe('scheduled');
        expect(earlier.state).toBe('queued');
      });

      it('deduplicates by (handler, idempotency key), also within one call', async () => {
        const [a, b] = await engine.enqueue([
          newJob({ idempotencyKey: 'k1', payload: 1 }),
          newJob({ idempotencyKey: 'k1', payload: 2 }),
        ]);
        expect(a!.created).toBe(true);
        expect(b!.created).toBe(false);
        expect(b!.job.id).toBe(a!.job.id);

        const [again] = await engine.enqueue([newJob({ idempotencyKey: 'k1', payload: 3 })]);
        expect(again).toMatchObject({ created: false, job: { id: a!.job.id, payload: 1 } });

        const [otherHandler] = await engine.enqueue([newJob({ handler: 'h2', idempotencyKey: 'k1' })]);
        expect(otherHandler!.created).toBe(true);
        expect(otherHandler!.job.id).not.toBe(a!.job.id);
        expect(await countJobs()).toBe(2);
      });

      it('returns null or empty for ids that name nothing', async () => {
        expect(await engine.getJob('999999')).toBeNull();
        expect(await engine.getJob('not-an-id')).toBeNull();
        expect(await engine.getAttempts('999999')).toEqual([]);
        expect(await engine.getEvent('nope')).toBeNull();
      });
    });

    describe('ingest', () => {
      it('stores the event and its jobs, and accepts the same event id once', async () => {
        const [first] = await engine.ingest([
          {
            event: { id: 'evt-1', name: 'user.created', data: { user: 7 }, tenant: 'acme' },
            jobs: [newJob({ handler: 'welcome' }), newJob({ handler: 'audit', runAt: T0 + 5000 })],
          },
        ]);
        expect(first!.created).toBe(true);
        expect(first!.event).toEqual({ id: 'evt-1', name: 'user.created', data: { user: 7 }, tenant: 'acme', receivedAt: T0 });
        expect(first!.jobs.map((j) => [j.handler, j.state, j.eventId])).toEqual([
          ['welcome', 'queued', 'evt-1'],
          ['audit', 'scheduled', 'evt-1'],
        ]);

        now += 10;
        const [second] = await engine.ingest([
          { event: { id: 'evt-1', name: 'user.created', data: { user: 8 } }, jobs: [newJob({ handler: 'other' })] },
        ]);
        expect(second!.created).toBe(false);
        expect(second!.event).toEqual(first!.event);
        expect(second!.jobs.map((j) => j.id).sort()).toEqual(first!.jobs.map((j) => j.id).sort());
        expect(await countJobs()).toBe(2);
        expect(await engine.getEvent('evt-1')).toEqual(first!.event);
        expect((await engine.listJobs({ eventId: 'evt-1', limit: 10 })).length).toBe(2);
      });

      it('returns exactly the event and jobs a read gives, with a tenant and without', async () => {
        const results = await engine.ingest([
          { event: { id: 'evt-t', name: 'user.created', data: { user: 7, tags: ['a'] }, tenant: 'acme' }, jobs: [newJob({ tenant: 'acme' })] },
          { event: { id: 'evt-n', name: 'user.deleted', data: null }, jobs: [newJob(), newJob({ handler: 'h2', runAt: T0 + 5000 })] },
        ]);
        for (const { event, jobs } of results) {
          const read = await engine.getEvent(event.id);
          expect(event).toStrictEqual(read);
          expect(JSON.stringify(event)).toBe(JSON.stringify(read));
          for (const job of jobs) {
            const stored = await getJob(job.id);
            expect(job).toStrictEqual(stored);
            expect(JSON.stringify(job)).toBe(JSON.stringify(stored));
          }
        }
      });

      it('handles several items, a repeated id within one call included', async () => {
        const results = await engine.ingest([
          { event: { id: 'a', name: 'e', data: 1 }, jobs: [newJob()] },
          { event: { id: 'b', name: 'e', data: 2 }, jobs: [] },
          { event: { id: 'a', name: 'e', data: 3 }, jobs: [newJob()] },
        ]);
        expect(results.map((r) => r.created)).toEqual([true, true, false]);
        expect(results[2]!.event.data).toBe(1);
        expect(results[2]!.jobs.map((j) => j.id)).toEqual(results[0]!.jobs.map((j) => j.id));
        expect(await countJobs()).toBe(1);
      });

      it('applies job idempotency keys to fan-out jobs', async () => {
        const [a] = await engine.ingest([{ event: { id: 'x', name: 'e', data: null }, jobs: [newJob({ idempotencyKey: 'once' })] }]);
        const [b] = await engine.ingest([{ event: { id: 'y', name: 'e', data: null }, jobs: [newJob({ idempotencyKey: 'once' })] }]);
        expect(b!.created).toBe(true);
        expect(b!.jobs[0]!.id).toBe(a!.jobs[0]!.id);
        expect(await countJobs()).toBe(1);
      });
    });

    describe('stageDue', () => {
      it('moves scheduled jobs to queued when their time comes', async () => {
        const job = await enqueueOne({ runAt: T0 + 1000 });
        await enqueueOne({ runAt: T0 + 5000 });
        expect(await engine.stageDue()).toEqual({ staged: 0, nextDueAt: T0 + 1000 });
        expect(await lease()).toEqual([]);

        now = T0 + 1000;
        expect(await engine.stageDue()).toEqual({ staged: 1, nextDueAt: T0 + 5000 });
        expect((await getJob(job.id)).state).toBe('queued');
        expect((await lease()).map((j) => j.id)).toEqual([job.id]);

        now = T0 + 6000;
        expect(await engine.stageDue()).toEqual({ staged: 1, nextDueAt: null });
      });
    });

    describe('lease', () => {
      it("gives each job a lease as long as its own handler's, not the longest asked for in the call", async () => {
        // The keyed jobs take the PostgreSQL engine's second lease shape (a transaction); the others its single statement.
        for (const concurrencyKey of [undefined, 'k1']) {
          const quick = await enqueueOne({ handler: 'quick', ...(concurrencyKey ? { concurrencyKey } : {}) });
          const slow = await enqueueOne({ handler: 'slow', ...(concurrencyKey ? { concurrencyKey: `${concurrencyKey}-slow` } : {}) });
          const leased = await lease({ handlers: [{ name: 'quick', max: 5, leaseMs: 35_000 }, { name: 'slow', max: 5, leaseMs: 330_000 }], leaseMs: 99_000 });
          const byId = new Map(leased.map((job) => [job.id, job]));
          expect(byId.get(quick.id)?.leaseExpiresAt).toBe(T0 + 35_000);
          expect(byId.get(slow.id)?.leaseExpiresAt).toBe(T0 + 330_000);
          expect((await getJob(quick.id)).leaseExpiresAt).toBe(T0 + 35_000);
          expect((await getJob(slow.id)).leaseExpiresAt).toBe(T0 + 330_000);
        }
        // A handler entry without its own duration falls back to the call's.
        const plain = await enqueueOne({ handler: 'plain' });
        expect((await leaseOne({ handlers: [{ name: 'plain', max: 1 }], leaseMs: 7_000 })).leaseExpiresAt).toBe(T0 + 7_000);
        expect((await getJob(plain.id)).leaseExpiresAt).toBe(T0 + 7_000);
      });

      it('marks the job running under a fresh token and records the attempt', async () => {
        await engine.ingest([{ event: { id: 'e1', name: 'ev', data: { a: 1 } }, jobs: [newJob()] }]);
        const plain = await enqueueOne();
        const leased = await lease({ workerId: 'worker-a', leaseMs: 5000 });
        expect(leased).toHaveLength(2);
        const [fromEvent, direct] = leased;
        expect(fromEvent).toMatchObject({
          state: 'running',
          attempts: 1,
          workerId: 'worker-a',
          leaseExpiresAt: T0 + 5000,
          event: { id: 'e1', name: 'ev', data: { a: 1 }, tenant: null, receivedAt: T0 },
        });
        expect(fromEvent!.leaseToken).toEqual(expect.any(String));
        expect(direct!.id).toBe(plain.id);
        expect(direct!.event).toBeNull();
        expect(direct!.leaseToken).not.toBe(fromEvent!.leaseToken);

        const stored = await getJob(direct!.id);
        expect(stored).toMatchObject({ state: 'running', leaseToken: direct!.leaseToken, attempts: 1 });
        // Every field of the leased job is the stored row's (an engine may fill in what the lease itself set).
        const { event: _event, ...fields } = direct!;
        expect(fields).toEqual(stored);
        const attempts = await engine.getAttempts(direct!.id);
        expect(attempts).toEqual([
          { jobId: direct!.id, attempt: 1, workerId: 'worker-a', startedAt: T0, endedAt: null, outcome: 'running', error: null },
        ]);
      });

      it('answers each leased job with exactly its stored row (every field set, and after a retry)', async () => {
        await engine.ingest([
          {
            event: { id: 'e-full', name: 'ev', data: { a: 1 }, tenant: 't1' },
            jobs: [
              newJob({
                payload: { deep: [1, { x: 'y' }] },
                priority: 3,
                maxAttempts: 5,
                idempotencyKey: 'idem-lease',
                concurrencyKey: 'ck',
                concurrencyLimit: 2,
                traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
                tenant: 't1',
              }),
            ],
          },
        ]);
        const expectStored = async (leased: LeasedJob): Promise<JobRow> => {
          const { event, ...fields } = leased;
          expect(event).toMatchObject({ id: 'e-full', tenant: 't1' });
          const stored = await getJob(leased.id);
          expect(fields).toStrictEqual(stored);
          // Same keys in the same order: API answers serialise the row as it is.
          expect(JSON.stringify(fields)).toBe(JSON.stringify(stored));
          return stored;
        };
        const first = await leaseOne({ workerId: 'worker-a', keyId: 'key_a' });
        expect(await expectStored(first)).toMatchObject({ attempts: 1, workerId: 'worker-a', leaseKeyId: 'key_a' });
        // A retried job carries last_error, a spent attempt and a crash into its next lease.
        now += 10;
        await engine.fail(first.id, first.leaseToken, { error: 'boom', retryAt: now, outcome: 'crashed', crashed: true });
        now += 10;
        const second = await leaseOne({ workerId: 'worker-b' });
        expect(await expectStored(second)).toMatchObject({ attempts: 2, crashes: 1, lastError: 'boom', workerId: 'worker-b', leaseKeyId: null, updatedAt: now });
      });

      it('gives every job an independently random token and records the leasing key (null for the node\'s own leases)', async () => {
        // Plain jobs, then keyed ones: PostgreSQL leases them through different statements.
        for (let i = 0; i < 10; i++) await enqueueOne();
        const plain = await lease({ keyId: 'key_a' });
        for (let i = 0; i < 10; i++) await enqueueOne({ concurrencyKey: `k${i}`, concurrencyLimit: 1 });
        const keyed = await lease({ keyId: 'key_a' });
        expect([plain.length, keyed.length]).toEqual([10, 10]);
        const remote = [...plain, ...keyed];
        const tokens = remote.map((j) => j.leaseToken);
        expect(new Set(tokens).size).toBe(20);
        for (const job of remote) {
          expect(job.leaseKeyId).toBe('key_a');
          expect((await getJob(job.id)).leaseKeyId).toBe('key_a');
          // Nothing of the job or of the call in it: one token must not lead to another.
          expect(job.leaseToken).not.toContain(`.${job.id}`);
          expect(job.leaseToken.length).toBeGreaterThanOrEqual(32);
        }
        // Tokens of one call share no prefix and no separated part (they used to share a nonce).
        const heads = new Set(tokens.map((t) => t.slice(0, 8)));
        expect(heads.size).toBe(20);
        const parts = tokens.flatMap((t) => t.split(/[.:]/));
        expect(new Set(parts).size).toBe(parts.length);

        const first = remote[0]!;
        expect(await engine.release(first.id, first.leaseToken)).toMatchObject({ ok: true });
        const local = await leaseOne({ limit: 1 });
        expect(local.id).toBe(first.id);
        expect(local.leaseKeyId).toBeNull();
        expect(local.leaseToken).not.toBe(first.leaseToken);
      });

      it('orders by priority (highest first), then runAt, then id', async () => {
        const low = await enqueueOne({ priority: 0, runAt: T0 - 500 });
        const highLate = await enqueueOne({ priority: 10, runAt: T0 - 100 });
        const highEarly = await enqueueOne({ priority: 10, runAt: T0 - 200 });
        const mid1 = await enqueueOne({ priority: 5, runAt: T0 - 300 });
        const mid2 = await enqueueOne({ priority: 5, runAt: T0 - 300 });
        const negative = await enqueueOne({ priority: -1, runAt: T0 - 1000 });
        const order = (await lease()).map((j) => j.id);
        expect(order).toEqual([highEarly.id, highLate.id, mid1.id, mid2.id, low.id, negative.id]);
      });

      it('takes at most max per handler and limit in total', async () => {
        for (let i = 0; i < 5; i++) await enqueueOne({ handler: 'a' });
        for (let i = 0; i < 5; i++) await enqueueOne({ handler: 'b' });
        for (let i = 0; i < 5; i++) await enqueueOne({ handler: 'c' });

        const first = await lease({ handlers: [{ name: 'a', max: 2 }, { name: 'b', max: 10 }], limit: 4 });
        const count = (jobs: LeasedJob[], h: string) => jobs.filter((j) => j.handler === h).length;
        expect(first).toHaveLength(4);
        expect(count(first, 'a')).toBe(2);
        expect(count(first, 'b')).toBe(2);
        expect(count(first, 'c')).toBe(0);

        const second = await lease({ handlers: [{ name: 'a', max: 0 }, { name: 'b', max: 1 }, { name: 'c', max: 3 }], limit: 10 });
        expect(count(second, 'a')).toBe(0);
        expect(count(second, 'b')).toBe(1);
        expect(count(second, 'c')).toBe(3);

        expect(await lease({ handlers: [], limit: 10 })).toEqual([]);
        expect(await lease({ handlers: [{ name: 'a', max: 5 }], limit: 0 })).toEqual([]);
      });

      it('finds a handler\'s jobs behind many jobs of a handler with no room left', async () => {
        for (let i = 0; i < 100; i++) await enqueueOne({ handler: 'busy', priority: 10 });
        const wanted = await enqueueOne({ handler: 'idle', priority: 0 });
        const jobs = await lease({ handlers: [{ name: 'busy', max: 1 }, { name: 'idle', max: 1 }], limit: 5 });
        expect(jobs.map((j) => j.handler).sort()).toEqual(['busy', 'idle']);
        expect(jobs.find((j) => j.handler === 'idle')!.id).toBe(wanted.id);
      });

      it('looks past many jobs blocked by their concurrency key', async () => {
        for (let i = 0; i < 40; i++) await enqueueOne({ priority: 10, concurrencyKey: 'serial', concurrencyLimit: 1 });
        const free = await enqueueOne({ priority: 0 });
        const jobs = await lease({ limit: 5 });
        expect(jobs).toHaveLength(2);
        expect(jobs.filter((j) => j.concurrencyKey === 'serial')).toHaveLength(1);
        expect(jobs.some((j) => j.id === free.id)).toBe(true);
      });

      it('skips excluded (paused) queues', async () => {
        await enqueueOne({ queue: 'paused' });
        const open = await enqueueOne({ queue: 'open' });
        const jobs = await lease({ excludeQueues: ['paused'] });
        expect(jobs.map((j) => j.id)).toEqual([open.id]);
      });

      it('honours concurrency keys within one call and across calls', async () => {
        const keyed: JobRow[] = [];
        for (let i = 0; i < 5; i++) keyed.push(await enqueueOne({ concurrencyKey: 'tenant-1', concurrencyLimit: 2 }));
        const other = await enqueueOne({ concurrencyKey: 'tenant-2', concurrencyLimit: 1 });
        const free = await enqueueOne();

        const first = await lease();
        expect(first.filter((j) => j.concurrencyKey === 'tenant-1')).toHaveLength(2);
        expect(first.map((j) => j.id)).toEqual(expect.arrayContaining([other.id, free.id]));
        expect(await lease()).toEqual([]);

        // Parallel calls must not together exceed the limit either.
        const done = first.find((j) => j.concurrencyKey === 'tenant-1')!;
        expect((await engine.complete(done.id, done.leaseToken, null)).ok).toBe(true);
        const parallel = (await Promise.all(Array.from({ length: 5 }, () => lease({ limit: 1 })))).flat();
        expect(parallel).toHaveLength(1);
        expect(parallel[0]!.concurrencyKey).toBe('tenant-1');
      });

      it('never hands out the same job twice to concurrent callers', async () => {
        await engine.enqueue(Array.from({ length: 200 }, (_, i) => newJob({ payload: i })));
        const batches = await Promise.all(
          Array.from({ length: 30 }, (_, i) => lease({ workerId: `w${i}`, limit: 10 })),
        );
        const ids = batches.flat().map((j) => j.id);
        expect(ids).toHaveLength(200);
        expect(new Set(ids).size).toBe(200);
        expect(await lease()).toEqual([]);
      });
    });

    describe('fenced transitions', () => {
      it('heartbeat extends the lease so the reaper leaves it alone', async () => {
        const job = await startJob({ leaseMs: 1000 });
        now += 800;
        const beat = await engine.heartbeat(job.id, job.leaseToken, 1000);
        expect(beat).toMatchObject({ ok: true, job: { leaseExpiresAt: now + 1000, state: 'running' } });
        now += 500; // past the original deadline, within the extended one
        expect(await engine.reapExpired({ poisonAfter: 3 })).toEqual([]);
        expect((await getJob(job.id)).state).toBe('running');
      });

      it('refuses a stale token for every fenced call and changes nothing', async () => {
        const job = await startJob();
        const before = await getJob(job.id);
        const stale = 'not-the-token';
        expect(await engine.heartbeat(job.id, stale, 1000)).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await engine.complete(job.id, stale, 1)).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await engine.fail(job.id, stale, { error: 'x', outcome: 'failed', retryAt: null })).toEqual({
          ok: false,
          reason: 'stale_lease',
        });
        expect(await engine.release(job.id, stale)).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await engine.getJob(job.id)).toEqual(before);
        expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual(['running']);

        expect(await engine.complete('999999', stale, 1)).toEqual({ ok: false, reason: 'not_found' });
        expect(await engine.heartbeat('garbage', stale, 1)).toEqual({ ok: false, reason: 'not_found' });
      });

      it('refuses a token that is not running (queued job) and the old token after a re-lease', async () => {
        const job = await startJob({ leaseMs: 1000 });
        now += 1001;
        await engine.reapExpired({ poisonAfter: 5 });
        expect(await engine.complete(job.id, job.leaseToken, 'late')).toEqual({ ok: false, reason: 'stale_lease' });
        const again = await leaseOne();
        expect(again.leaseToken).not.toBe(job.leaseToken);
        expect(await engine.complete(job.id, job.leaseToken, 'late')).toEqual({ ok: false, reason: 'stale_lease' });
        expect((await engine.complete(job.id, again.leaseToken, 'ok')).ok).toBe(true);
      });

      it('settles transitions made together independently: a result that cannot be stored fails only its own call', async () => {
        await engine.enqueue([newJob({ payload: 'a' }), newJob({ payload: 'b' }), newJob({ payload: 'c' })]);
        const [a, b, c] = await lease({ limit: 3 });
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        // Same turn: the engine may settle these in one batch.
        const results = await Promise.allSettled([
          engine.complete(a!.id, a!.leaseToken, { ok: 1 }),
          engine.complete(b!.id, b!.leaseToken, circular),
          engine.fail(c!.id, c!.leaseToken, { error: 'boom', outcome: 'failed', retryAt: null }),
        ]);
        expect(results[0]).toMatchObject({ status: 'fulfilled', value: { ok: true } });
        expect(results[1]!.status).toBe('rejected');
        expect(results[2]).toMatchObject({ status: 'fulfilled', value: { ok: true } });
        expect(await getJob(a!.id)).toMatchObject({ state: 'succeeded', result: { ok: 1 } });
        expect(await getJob(b!.id)).toMatchObject({ state: 'running', leaseToken: b!.leaseToken });
        expect(await getJob(c!.id)).toMatchObject({ state: 'dead', lastError: 'boom' });
        expect((await engine.complete(b!.id, b!.leaseToken, 'fine')).ok).toBe(true);
      });

      it('completes without the row when asked, alongside completions that want it', async () => {
        await engine.enqueue([newJob({ payload: 'a' }), newJob({ payload: 'b' }), newJob({ payload: 'c' })]);
        const [a, b, c] = await lease({ limit: 3 });
        // Same turn: the engine may settle these in one batch.
        const [lean, full, stale] = await Promise.all([
          engine.complete(a!.id, a!.leaseToken, { lean: true }, { row: false }),
          engine.complete(b!.id, b!.leaseToken, { lean: false }),
          engine.complete(c!.id, 'not-its-token', null, { row: false }),
        ]);
        expect(lean.ok).toBe(true);
        expect(full).toMatchObject({ ok: true, job: { id: b!.id, state: 'succeeded', result: { lean: false } } });
        expect(stale).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await getJob(a!.id)).toMatchObject({ state: 'succeeded', result: { lean: true } });
        expect(await engine.complete(a!.id, a!.leaseToken, null, { row: false })).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await getJob(c!.id)).toMatchObject({ state: 'running', leaseToken: c!.leaseToken });
      });

      it('completes once; the second completion is refused', async () => {
        const job = await startJob();
        now += 50;
        const done = await engine.complete(job.id, job.leaseToken, { sent: true });
        expect(done).toMatchObject({
          ok: true,
          job: { state: 'succeeded', result: { sent: true }, finishedAt: now, leaseToken: null, leaseExpiresAt: null },
        });
        expect(await engine.complete(job.id, job.leaseToken, { sent: 'again' })).toEqual({ ok: false, reason: 'stale_lease' });
        expect((await getJob(job.id)).result).toEqual({ sent: true });
        expect(await engine.getAttempts(job.id)).toMatchObject([{ attempt: 1, outcome: 'succeeded', endedAt: now }]);
      });

      it('fail schedules a retry, then goes dead after the last attempt keeping last_error', async () => {
        await enqueueOne({ maxAttempts: 2 });
        const first = await leaseOne();
        const failed = await engine.fail(first.id, first.leaseToken, { error: 'boom 1', outcome: 'failed', retryAt: now + 1000 });
        expect(failed).toMatchObject({
          ok: true,
          job: { state: 'scheduled', runAt: T0 + 1000, lastError: 'boom 1', leaseToken: null, attempts: 1 },
        });
        expect(await lease()).toEqual([]);

        now += 1000;
        await engine.stageDue();
        const second = await leaseOne();
        expect(second).toMatchObject({ id: first.id, attempts: 2 });
        const dead = await engine.fail(second.id, second.leaseToken, { error: 'boom 2', outcome: 'timed_out', retryAt: null });
        expect(dead).toMatchObject({
          ok: true,
          job: { state: 'dead', deadReason: 'exhausted', lastError: 'boom 2', finishedAt: now },
        });
        expect((await engine.getAttempts(first.id)).map((a) => [a.outcome, a.error])).toEqual([
          ['failed', 'boom 1'],
          ['timed_out', 'boom 2'],
        ]);
      });

      it('fail with a past retryAt requeues at once; a dead reason is kept', async () => {
        const a = await startJob();
        const retried = await engine.fail(a.id, a.leaseToken, { error: 'e', outcome: 'failed', retryAt: now });
        expect(retried).toMatchObject({ ok: true, job: { state: 'queued' } });
        const b = await leaseOne();
        const dead = await engine.fail(b.id, b.leaseToken, {
          error: 'bad input',
          outcome: 'failed',
          retryAt: null,
          deadReason: 'non_retryable',
        });
        expect(dead).toMatchObject({ ok: true, job: { state: 'dead', deadReason: 'non_retryable' } });
      });

      it('fail with crashed counts the attempt in crashes (retry and dead); a plain fail does not', async () => {
        await enqueueOne({ maxAttempts: 5 });
        const first = await leaseOne();
        const plain = await engine.fail(first.id, first.leaseToken, { error: 'threw', outcome: 'failed', retryAt: now });
        expect(plain).toMatchObject({ ok: true, job: { state: 'queued', crashes: 0 } });
        const second = await leaseOne();
        const killed = await engine.fail(second.id, second.leaseToken, { error: 'oom', outcome: 'crashed', retryAt: now + 1000, crashed: true });
        expect(killed).toMatchObject({ ok: true, job: { state: 'scheduled', crashes: 1 } });
        expect(await getJob(first.id)).toMatchObject({ crashes: 1, lastError: 'oom' });
        now += 1000;
        await engine.stageDue();
        const third = await leaseOne();
        expect(third.crashes).toBe(1);
        const poisoned = await engine.fail(third.id, third.leaseToken, { error: 'oom', outcome: 'crashed', retryAt: null, deadReason: 'poison', crashed: true });
        expect(poisoned).toMatchObject({ ok: true, job: { state: 'dead', deadReason: 'poison', crashes: 2, finishedAt: now } });
        expect(await getJob(first.id)).toMatchObject({ state: 'dead', deadReason: 'poison', crashes: 2 });
        expect((await engine.getAttempts(first.id)).map((a) => a.outcome)).toEqual(['failed', 'crashed', 'crashed']);
        // A stale holder's crashed fail changes nothing.
        expect(await engine.fail(third.id, third.leaseToken, { error: 'late', outcome: 'failed', retryAt: null, crashed: true })).toEqual({ ok: false, reason: 'stale_lease' });
        expect((await getJob(first.id)).crashes).toBe(2);
      });

      it('release requeues without spending the attempt', async () => {
        const job = await startJob();
        const released = await engine.release(job.id, job.leaseToken);
        expect(released).toMatchObject({ ok: true, job: { state: 'queued', attempts: 0, leaseToken: null } });
        expect(await engine.complete(job.id, job.leaseToken, null)).toEqual({ ok: false, reason: 'stale_lease' });
        const again = await leaseOne();
        expect(again.attempts).toBe(1);
        const attempts = await engine.getAttempts(job.id);
        expect(attempts.map((a) => a.outcome)).toEqual(['released', 'running']);
        expect(attempts[1]!.attempt).toBeGreaterThan(attempts[0]!.attempt);
      });

      it('release with a future runAt holds the job back, unspent, until then', async () => {
        const job = await startJob();
        const released = await engine.release(job.id, job.leaseToken, now + 500);
        expect(released).toMatchObject({ ok: true, job: { state: 'scheduled', attempts: 0, runAt: now + 500, leaseToken: null } });
        expect(await lease({ limit: 10 })).toEqual([]);
        expect(await engine.stageDue()).toMatchObject({ staged: 0, nextDueAt: now + 500 });
        now += 500;
        expect(await engine.stageDue()).toMatchObject({ staged: 1 });
        const again = await leaseOne();
        expect(again).toMatchObject({ id: job.id, attempts: 1 });
        // A runAt already past is a plain release: queued at once.
        const back = await engine.release(again.id, again.leaseToken, now - 1);
        expect(back).toMatchObject({ ok: true, job: { state: 'queued', attempts: 0 } });
      });

      it("writes each attempt whole with its lease's worker and start, whichever way it ends; heartbeats move no start", async () => {
        const job = await enqueueOne({ maxAttempts: 5 });
        const row = (attempt: number, workerId: string, startedAt: number, endedAt: number | null, outcome: string, error: string | null = null) =>
          attemptRow(job.id, attempt, workerId, startedAt, endedAt, outcome, error);
        // Failed, then retried at once.
        const first = await leaseOne({ workerId: 'w-fail' });
        now += 10;
        expect((await engine.heartbeat(first.id, first.leaseToken, 1000)).ok).toBe(true);
        expect(await engine.getAttempts(job.id)).toEqual([row(1, 'w-fail', T0, null, 'running')]);
        now += 10;
        expect((await engine.fail(first.id, first.leaseToken, { error: 'boom', outcome: 'failed', retryAt: now })).ok).toBe(true);
        // Released.
        const second = await leaseOne({ workerId: 'w-release' });
        now += 10;
        expect((await engine.release(second.id, second.leaseToken)).ok).toBe(true);
        // Expired and reaped.
        const third = await leaseOne({ workerId: 'w-reap', leaseMs: 100 });
        await markStarted(third);
        now += 101;
        expect(await engine.reapExpired({ poisonAfter: 5 })).toHaveLength(1);
        // Cancelled while running, after a heartbeat.
        const fourth = await leaseOne({ workerId: 'w-cancel' });
        now += 10;
        expect((await engine.heartbeat(fourth.id, fourth.leaseToken, 1000)).ok).toBe(true);
        now += 10;
        expect(await engine.cancel(job.id)).toMatchObject({ state: 'cancelled' });
        expect(await engine.getAttempts(job.id)).toEqual([
          row(1, 'w-fail', T0, T0 + 20, 'failed', 'boom'),
          row(2, 'w-release', T0 + 20, T0 + 30, 'released'),
          row(3, 'w-reap', T0 + 30, T0 + 131, 'lease_expired'),
          row(4, 'w-cancel', T0 + 131, T0 + 151, 'cancelled'),
        ]);
        // Completed, after a heartbeat.
        await engine.retry(job.id);
        const fifth = await leaseOne({ workerId: 'w-done' });
        now += 10;
        expect((await engine.heartbeat(fifth.id, fifth.leaseToken, 1000)).ok).toBe(true);
        expect((await engine.getAttempts(job.id)).at(-1)).toEqual(row(5, 'w-done', T0 + 151, null, 'running'));
        now += 10;
        expect((await engine.complete(fifth.id, fifth.leaseToken, null)).ok).toBe(true);
        expect((await engine.getAttempts(job.id)).at(-1)).toEqual(row(5, 'w-done', T0 + 151, T0 + 171, 'succeeded'));
        expect(await engine.getAttempts(job.id)).toHaveLength(5);
      });

      it('shows the attempt that completed a job whole, first time or after failures', async () => {
        // PostgreSQL writes no attempt row for a success (the job row holds it); the answers must not tell.
        const row = attemptRow;
        const once = await enqueueOne();
        const only = await leaseOne({ workerId: 'w-once' });
        now += 7;
        expect((await engine.complete(only.id, only.leaseToken, { r: 1 }, { row: false })).ok).toBe(true);
        expect(await engine.getAttempts(once.id)).toEqual([row(once.id, 1, 'w-once', T0, T0 + 7, 'succeeded')]);

        const thrice = await enqueueOne({ maxAttempts: 5 });
        const start = now;
        for (const [i, error] of ['first', 'second'].entries()) {
          const held = await leaseOne({ workerId: `w-${i}` });
          now += 10;
          expect((await engine.fail(held.id, held.leaseToken, { error, outcome: 'failed', retryAt: now })).ok).toBe(true);
        }
        const last = await leaseOne({ workerId: 'w-last' });
        await markStarted(last);
        now += 10;
        expect((await engine.complete(last.id, last.leaseToken, null)).ok).toBe(true);
        expect(await engine.getAttempts(thrice.id)).toEqual([
          row(thrice.id, 1, 'w-0', start, start + 10, 'failed', 'first'),
          row(thrice.id, 2, 'w-1', start + 10, start + 20, 'failed', 'second'),
          row(thrice.id, 3, 'w-last', start + 20, start + 30, 'succeeded'),
        ]);
        expect(await engine.getAttempts(once.id)).toHaveLength(1); // another job's attempts are not mixed in
      });
    });

    describe('reaping', () => {
      it('requeues a job whose lease expired and fences out its holder', async () => {
        const job = await startJob({ leaseMs: 1000 });
        now += 1000; // exactly at the deadline: still held
        expect(await engine.reapExpired({ poisonAfter: 3 })).toEqual([]);
        now += 1;
        expect(await engine.reapExpired({ poisonAfter: 3 })).toEqual([
          // expiredAt: the lease's deadline, where the recovery latency starts.
          { id: job.id, handler: 'h', queue: 'default', state: 'queued', started: true, expiredAt: now - 1 },
        ]);
        expect(await getJob(job.id)).toMatchObject({ state: 'queued', crashes: 1, leaseToken: null, leaseExpiresAt: null });
        expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual(['lease_expired']);
        expect((await engine.heartbeat(job.id, job.leaseToken, 1000)).ok).toBe(false);
      });

      it('poisons a job reclaimed poisonAfter times', async () => {
        const first = await startJob({ leaseMs: 100 });
        now += 101;
        expect((await engine.reapExpired({ poisonAfter: 2 }))[0]!.state).toBe('queued');
        await markStarted(await leaseOne({ leaseMs: 100 }));
        now += 101;
        expect(await engine.reapExpired({ poisonAfter: 2 })).toEqual([
          { id: first.id, handler: 'h', queue: 'default', state: 'dead', started: true, expiredAt: now - 1 },
        ]);
        expect(await getJob(first.id)).toMatchObject({ state: 'dead', deadReason: 'poison', crashes: 2, finishedAt: now });
        expect(await lease()).toEqual([]);
      });

      it('reclaimWorker requeues only that worker\'s jobs, as crashed', async () => {
        await engine.enqueue([newJob(), newJob(), newJob()]);
        const mine = await lease({ workerId: 'old', limit: 2 });
        const theirs = await leaseOne({ workerId: 'other' });
        await markStarted(...mine, theirs);
        const reclaimed = await engine.reclaimWorker('old', { poisonAfter: 3 });
        expect(reclaimed.map((r) => r.id).sort()).toEqual(mine.map((j) => j.id).sort());
        expect(reclaimed.every((r) => r.state === 'queued')).toBe(true);
        // No claim lapsed: the worker id's previous incarnation is simply gone.
        expect(reclaimed.every((r) => r.expiredAt === undefined)).toBe(true);
        for (const job of mine) {
          expect(await getJob(job.id)).toMatchObject({ state: 'queued', crashes: 1 });
          expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual(['crashed']);
        }
        expect((await getJob(theirs.id)).state).toBe('running');
        expect(await engine.reclaimWorker('nobody', { poisonAfter: 3 })).toEqual([]);

        const poisoned = await engine.reclaimWorker('other', { poisonAfter: 1 });
        expect(poisoned).toEqual([{ id: theirs.id, handler: 'h', queue: 'default', state: 'dead', started: true }]);
        expect((await getJob(theirs.id)).deadReason).toBe('poison');
      });

      describe('only a started handler counts as a crash', () => {
        /** Lease two jobs: `started` is marked started, `ahead` stays leased ahead (the dispatcher's buffer). */
        const leaseTwo = async (workerId: string, leaseMs = 30_000) => {
          await engine.enqueue([newJob(), newJob()]);
          const [started, ahead] = await lease({ workerId, limit: 2, leaseMs });
          await markStarted(started!);
          return { started: started!, ahead: ahead! };
        };

        const expectUnspent = async (job: LeasedJob) => {
          // Back to the queue as if never leased: attempt and crash counts unchanged, old holder fenced out.
          expect(await getJob(job.id)).toMatchObject({ state: 'queued', attempts: 0, crashes: 0, leaseToken: null, deadReason: null });
          expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual(['released']);
          expect(await engine.start(job.id, job.leaseToken)).toEqual({ ok: false, reason: 'stale_lease' });
        };

        const expectCrashed = async (job: LeasedJob, outcome: string) => {
          expect(await getJob(job.id)).toMatchObject({ attempts: 1, crashes: 1 });
          expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual([outcome]);
        };

        it('start is fenced by the lease and idempotent for its holder', async () => {
          const job = (await leaseTwo('w1')).ahead;
          expect(await engine.start(job.id, 'not-the-token')).toEqual({ ok: false, reason: 'stale_lease' });
          expect(await engine.start('999999', job.leaseToken)).toEqual({ ok: false, reason: 'not_found' });
          expect(await engine.start(job.id, job.leaseToken)).toEqual({ ok: true });
          expect(await engine.start(job.id, job.leaseToken)).toEqual({ ok: true });
          expect(await getJob(job.id)).toMatchObject({ state: 'running' });
        });

        it('marks made together are answered each by its own token (engines batch them)', async () => {
          await engine.enqueue([newJob(), newJob(), newJob()]);
          const [a, b, c] = await lease({ workerId: 'w1', limit: 3 });
          // One turn: the engine sends these as one or a few statements; each gets its own answer.
          const results = await Promise.all([
            engine.start(a!.id, a!.leaseToken),
            engine.start(b!.id, 'not-the-token'),
            engine.start(a!.id, a!.leaseToken),
            engine.start('999999', c!.leaseToken),
            engine.start(c!.id, c!.leaseToken),
            engine.start(b!.id, b!.leaseToken),
          ]);
          expect(results).toEqual([
            { ok: true },
            { ok: false, reason: 'stale_lease' },
            { ok: true },
            { ok: false, reason: 'not_found' },
            { ok: true },
            { ok: true },
          ]);
          // All three started: a reclaim counts each as a crash.
          const reclaimed = await engine.reclaimWorker('w1', { poisonAfter: 5 });
          expect(reclaimed.map((r) => r.started)).toEqual([true, true, true]);
        });

        it('reclaimWorker (restart): leased-not-started goes back unspent, started counts a crash', async () => {
          const { started, ahead } = await leaseTwo('old');
          const reclaimed = await engine.reclaimWorker('old', { poisonAfter: 1 });
          expect(reclaimed.map((r) => [r.id, r.state, r.started]).sort()).toEqual(
            [[started.id, 'dead', true], [ahead.id, 'queued', false]].sort(),
          );
          await expectUnspent(ahead);
          expect(await getJob(started.id)).toMatchObject({ state: 'dead', deadReason: 'poison', crashes: 1 });
        });

        it('reapExpired (lease expiry): leased-not-started goes back unspent, started counts a crash', async () => {
          const { started, ahead } = await leaseTwo('w1', 100);
          now += 101;
          const reaped = await engine.reapExpired({ poisonAfter: 3 });
          expect(reaped.map((r) => [r.id, r.started]).sort()).toEqual([[started.id, true], [ahead.id, false]].sort());
          await expectUnspent(ahead);
          await expectCrashed(started, 'lease_expired');
        });

        it('reclaimDeadNodes (a peer): leased-not-started goes back unspent, started counts a crash', async () => {
          await engine.registerNode({ nodeId: 'node-a', incarnation: 'a-1' });
          const { started, ahead } = await leaseTwo('node-a');
          now += 10_000;
          const { jobs } = await engine.reclaimDeadNodes({ staleAfterMs: 3000, poisonAfter: 3 });
          expect(jobs.map((r) => [r.id, r.started]).sort()).toEqual([[started.id, true], [ahead.id, false]].sort());
          // The node's claim lapsed at its last heartbeat (registration) plus staleAfterMs.
          expect(jobs.map((r) => r.expiredAt)).toEqual([now - 10_000 + 3000, now - 10_000 + 3000]);
          await expectUnspent(ahead);
          await expectCrashed(started, 'crashed');
        });

        it('a job reclaimed unstarted any number of times is never poisoned', async () => {
          const job = await enqueueOne();
          for (let i = 0; i < 5; i++) {
            const leased = await leaseOne({ workerId: 'old' });
            expect(leased.attempts).toBe(1);
            expect(await engine.reclaimWorker('old', { poisonAfter: 2 })).toMatchObject([{ id: job.id, state: 'queued', started: false }]);
          }
          expect(await getJob(job.id)).toMatchObject({ state: 'queued', attempts: 0, crashes: 0 });
          // Attempt rows are kept per lease, each marked released.
          expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual(Array(5).fill('released'));
        });

        // --- marks made by the lease itself (`LeaseRequest.start`) ---

        const markedSettle = async (first: LeasedJob, second: LeasedJob) => {
          expect((await engine.complete(first.id, first.leaseToken, 'one')).ok).toBe(true);
          expect((await engine.fail(second.id, second.leaseToken, { error: 'x', outcome: 'failed', retryAt: now })).ok).toBe(true);
          expect((await engine.getAttempts(first.id)).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'succeeded']]);
          expect((await engine.getAttempts(second.id)).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'failed']]);
        };

        it('a lease marks started the first `start` jobs of each handler, in the order it returns them; only they count as crashes', async () => {
          await engine.enqueue([newJob({ priority: 3 }), newJob({ priority: 2 }), newJob({ priority: 1 }), newJob({ handler: 'g' }), newJob({ handler: 'g' })]);
          const leased = await lease({ handlers: [{ name: 'h', max: 3, start: 2 }, { name: 'g', max: 2, start: 1 }], limit: 5 });
          expect(leased).toHaveLength(5);
          const hs = leased.filter((j) => j.handler === 'h');
          const gs = leased.filter((j) => j.handler === 'g');
          const marked = new Set([hs[0]!.id, hs[1]!.id, gs[0]!.id]);
          // Marked by the lease: start answers yes (without a mark of its own where the engine can).
          expect(await engine.start(hs[0]!.id, hs[0]!.leaseToken)).toEqual({ ok: true });
          const reclaimed = await engine.reclaimWorker('w1', { poisonAfter: 3 });
          expect(new Map(reclaimed.map((r) => [r.id, r.started]))).toEqual(new Map(leased.map((j) => [j.id, marked.has(j.id)])));
          for (const job of leased) {
            expect(await getJob(job.id)).toMatchObject(marked.has(job.id) ? { state: 'queued', attempts: 1, crashes: 1 } : { state: 'queued', attempts: 0, crashes: 0 });
          }
          // Without `start`, nothing is marked.
          const again = await lease({ workerId: 'w2', handlers: [{ name: 'h', max: 3 }, { name: 'g', max: 2 }], limit: 5 });
          expect(again).toHaveLength(5);
          expect((await engine.reclaimWorker('w2', { poisonAfter: 3 })).every((r) => !r.started)).toBe(true);
        });

        it('a lease-marked job answers start only for its own token, and settles like any other', async () => {
          await engine.enqueue([newJob(), newJob()]);
          const [first, second] = await lease({ handlers: [{ name: 'h', max: 2, start: 2 }], limit: 2 });
          expect(await engine.start(first!.id, 'not-the-token')).toEqual({ ok: false, reason: 'stale_lease' });
          expect(await engine.start(first!.id, first!.leaseToken)).toEqual({ ok: true });
          expect(await engine.start(first!.id, first!.leaseToken)).toEqual({ ok: true });
          expect((await engine.complete(first!.id, 'not-the-token', 'x')).ok).toBe(false);
          await markedSettle(first!, second!);
          expect(await engine.start(first!.id, first!.leaseToken)).toEqual({ ok: false, reason: 'stale_lease' });
          expect(await getJob(first!.id)).toMatchObject({ state: 'succeeded', result: 'one', attempts: 1 });
          expect(await getJob(second!.id)).toMatchObject({ state: 'queued', attempts: 1, crashes: 0, lastError: 'x' });
        });

        it('a lease-marked job handed back unstarted, then leased again without `start`, is not counted as started', async () => {
          const job = await enqueueOne();
          const marked = await leaseOne({ handlers: [{ name: 'h', max: 1, start: 1 }] });
          expect((await engine.release(marked.id, marked.leaseToken)).ok).toBe(true);
          expect(await getJob(job.id)).toMatchObject({ state: 'queued', attempts: 0 });
          const plain = await leaseOne();
          expect(plain.attempts).toBe(1);
          expect(await engine.start(marked.id, marked.leaseToken)).toEqual({ ok: false, reason: 'stale_lease' });
          expect(await engine.reclaimWorker('w1', { poisonAfter: 3 })).toMatchObject([{ id: job.id, started: false }]);
          expect((await engine.getAttempts(job.id)).map((a) => [a.attempt, a.outcome])).toEqual([[1, 'released'], [2, 'released']]);
        });

        it('a lease-marked job cancelled before its start is refused it', async () => {
          await enqueueOne();
          const marked = await leaseOne({ handlers: [{ name: 'h', max: 1, start: 1 }] });
          expect((await engine.cancel(marked.id))?.state).toBe('cancelled');
          expect(await engine.start(marked.id, marked.leaseToken)).toEqual({ ok: false, reason: 'stale_lease' });
        });

        it('a lease-marked job reclaimed before its start is refused it, and the reclaim counts a crash', async () => {
          await enqueueOne();
          const marked = await leaseOne({ handlers: [{ name: 'h', max: 1, start: 1 }] });
          expect(await engine.reclaimWorker('w1', { poisonAfter: 5 })).toMatchObject([{ id: marked.id, started: true, state: 'queued' }]);
          expect(await engine.start(marked.id, marked.leaseToken)).toEqual({ ok: false, reason: 'stale_lease' });
          const again = await leaseOne({ workerId: 'w2' });
          expect(again.id).toBe(marked.id);
          expect(await engine.start(marked.id, marked.leaseToken)).toEqual({ ok: false, reason: 'stale_lease' });
          expect(await engine.start(again.id, again.leaseToken)).toEqual({ ok: true });
        });
      });
    });

    describe('operator actions', () => {
      it('cancels queued and running jobs; a cancelled holder cannot complete', async () => {
        const queued = await enqueueOne({ runAt: T0 + 10_000 });
        const cancelledQueued = await engine.cancel(queued.id);
        expect(cancelledQueued).toMatchObject({ state: 'cancelled', finishedAt: now });

        const running = await startJob();
        now += 5;
        expect(await engine.cancel(running.id)).toMatchObject({ state: 'cancelled', leaseToken: null });
        expect(await engine.complete(running.id, running.leaseToken, 'x')).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await engine.getAttempts(running.id)).toMatchObject([{ outcome: 'cancelled', endedAt: now }]);

        // Terminal: returned unchanged.
        const again = await engine.cancel(running.id);
        expect(again).toEqual(await getJob(running.id));
        expect(await engine.cancel('999999')).toBeNull();
      });

      it('retries a dead job with a fresh attempt budget', async () => {
        const job = await startJob({ leaseMs: 10 });
        now += 11;
        await engine.reapExpired({ poisonAfter: 1 });
        expect((await getJob(job.id)).state).toBe('dead');

        const retried = await engine.retry(job.id);
        expect(retried).toMatchObject({
          state: 'queued',
          attempts: 0,
          crashes: 0,
          deadReason: null,
          finishedAt: null,
        });
        const again = await leaseOne();
        expect(again).toMatchObject({ id: job.id, attempts: 1 });

        // Not dead or cancelled: unchanged.
        expect(await engine.retry(job.id)).toEqual(await getJob(job.id));
        expect(await engine.retry('999999')).toBeNull();
      });

      it('retries a cancelled job', async () => {
        const job = await enqueueOne();
        await engine.cancel(job.id);
        expect(await engine.retry(job.id)).toMatchObject({ state: 'queued', finishedAt: null });
      });
    });

    describe('queue depth limits', () => {
      const limits = (maxDepth: number) => ({ queueLimits: new Map([['default', { maxDepth }]]) });

      it('refuses beyond maxDepth with QueueFullError and writes nothing', async () => {
        await engine.enqueue([newJob(), newJob({ runAt: T0 + 1000 })], limits(3));
        await expect(engine.enqueue([newJob({ payload: 'a' }), newJob({ payload: 'b' })], limits(3))).rejects.toBeInstanceOf(
          QueueFullError,
        );
        expect(await countJobs()).toBe(2);

        await expect(
          engine.ingest([{ event: { id: 'full', name: 'e', data: null }, jobs: [newJob(), newJob()] }], limits(3)),
        ).rejects.toMatchObject({ code: 'queue_full' });
        expect(await engine.getEvent('full')).toBeNull();

        // A long batch refused part-way (its first 17 jobs written before the keyed one) writes nothing, and its counts are not kept either.
        const long = Array.from({ length: 25 }, (_, i) => newJob(i === 17 ? { idempotencyKey: 'late' } : {}));
        await expect(engine.enqueue(long, limits(19))).rejects.toBeInstanceOf(QueueFullError);
        expect(await countJobs()).toBe(2);
        expect(await engine.enqueue(Array.from({ length: 17 }, () => newJob()), limits(19))).toHaveLength(17);
        await expect(engine.enqueue([newJob()], limits(19))).rejects.toBeInstanceOf(QueueFullError);

        // Other queues and unlimited calls are unaffected.
        expect((await engine.enqueue([newJob({ queue: 'elsewhere' })], limits(3)))[0]!.created).toBe(true);
        expect((await engine.enqueue([newJob()]))[0]!.created).toBe(true);
      });

      it('does not count idempotent duplicates, and frees room as jobs finish', async () => {
        const [first] = await engine.enqueue([newJob({ idempotencyKey: 'k' })], limits(1));
        const [dup] = await engine.enqueue([newJob({ idempotencyKey: 'k' })], limits(1));
        expect(dup).toMatchObject({ created: false, job: { id: first!.job.id } });
        await expect(engine.enqueue([newJob()], limits(1))).rejects.toBeInstanceOf(QueueFullError);

        const leased = await leaseOne();
        await expect(engine.enqueue([newJob()], limits(1))).rejects.toBeInstanceOf(QueueFullError);
        await engine.complete(leased.id, leased.leaseToken, null);
        const [next] = await engine.enqueue([newJob()], limits(1));
        expect(next!.created).toBe(true);

        await engine.cancel(next!.job.id);
        expect((await engine.enqueue([newJob()], limits(1)))[0]!.created).toBe(true);
      });

      it('counts concurrent inserts together', async () => {
        const results = await Promise.allSettled(Array.from({ length: 5 }, () => engine.enqueue([newJob()], limits(3))));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
        const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(refused).toHaveLength(2);
        for (const r of refused) expect(r.reason).toBeInstanceOf(QueueFullError);
        expect(await countJobs()).toBe(3);
      });

      it('a refused call does not roll back calls committed alongside it', async () => {
        await engine.enqueue([newJob({ queue: 'tiny' })]);
        const tiny = { queueLimits: new Map([['tiny', { maxDepth: 1 }]]) };
        const [a, refused, b] = await Promise.allSettled([
          engine.enqueue([newJob({ payload: 'a' })]),
          engine.enqueue([newJob({ queue: 'tiny' })], tiny),
          engine.enqueue([newJob({ payload: 'b' })]),
        ]);
        expect(a.status).toBe('fulfilled');
        expect(refused.status).toBe('rejected');
        expect(b.status).toBe('fulfilled');
        const payloads = (await engine.listJobs({ queue: 'default', limit: 10 })).map((j) => j.payload).sort();
        expect(payloads).toEqual(['a', 'b']);
      });
    });

    describe('prune', () => {
      it('deletes old finished jobs in bounded batches, with their attempts, and orphaned events', async () => {
        const finish = async (how: 'succeed' | 'cancel' | 'dead') => {
          const job = await enqueueOne();
          if (how === 'cancel') return getJob(job.id).then(() => engine.cancel(job.id)).then((j) => j!);
          const leased = await leaseOne();
          if (how === 'succeed') await engine.complete(leased.id, leased.leaseToken, null);
          else await engine.fail(leased.id, leased.leaseToken, { error: 'x', outcome: 'failed', retryAt: null });
          return leased;
        };
        const succeeded = [await finish('succeed'), await finish('succeed'), await finish('cancel')];
        const dead = await finish('dead');
        await engine.ingest([{ event: { id: 'orphan', name: 'e', data: null }, jobs: [] }]);
        await engine.ingest([{ event: { id: 'kept', name: 'e', data: null }, jobs: [newJob({ runAt: T0 + 1e9 })] }]);
        now += 1000;
        const recent = await finish('succeed');

        const req = { finishedBefore: T0 + 500, deadBefore: T0, eventsBefore: T0 + 500, batchSize: 2 };
        expect(await engine.prune(req)).toEqual({ jobs: 2, events: 1 });
        expect(await engine.prune(req)).toEqual({ jobs: 1, events: 0 });
        expect(await engine.prune(req)).toEqual({ jobs: 0, events: 0 });
        for (const job of succeeded) {
          expect(await engine.getJob(job!.id)).toBeNull();
          expect(await engine.getAttempts(job!.id)).toEqual([]);
        }
        expect(await engine.getJob(dead.id)).not.toBeNull(); // dead has its own, shorter-reaching cutoff
        expect(await engine.getJob(recent.id)).not.toBeNull();
        expect(await engine.getEvent('orphan')).toBeNull();
        expect(await engine.getEvent('kept')).not.toBeNull();

        expect(await engine.prune({ ...req, deadBefore: T0 + 500 })).toEqual({ jobs: 1, events: 0 });
        expect(await engine.getJob(dead.id)).toBeNull();
      });
    });

    describe('reads', () => {
      it('lists newest first with a stable keyset cursor and filters', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 25; i++) ids.push((await enqueueOne({ handler: i % 2 ? 'odd' : 'even', payload: i })).id);
        const pages: string[][] = [];
        let before: string | undefined;
        for (;;) {
          const page = await engine.listJobs({ limit: 10, ...(before === undefined ? {} : { before }) });
          if (page.length === 0) break;
          pages.push(page.map((j) => j.id));
          before = page.at(-1)!.id;
          // New work arriving between pages must not shift later pages.
          await enqueueOne({ handler: 'late' });
        }
        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        expect(pages.flat()).toEqual([...ids].reverse());

        expect((await engine.listJobs({ handler: 'odd', limit: 100 })).length).toBe(12);
        const leased = await leaseOne({ handlers: [{ name: 'even', max: 1 }] });
        expect((await engine.listJobs({ state: 'running', limit: 100 })).map((j) => j.id)).toEqual([leased.id]);
        expect(await engine.listJobs({ queue: 'nope', limit: 100 })).toEqual([]);
        expect(await engine.listJobs({ state: 'queued', handler: 'even', queue: 'default', limit: 3 })).toHaveLength(3);
      });

      it('filters by payload fields (nested, numbers as text) and creation time, with the keyset cursor', async () => {
        const made: JobRow[] = [];
        for (let i = 0; i < 12; i++) {
          now = T0 + i * 1000;
          made.push(await enqueueOne({ payload: { orderId: `o-${i % 3}`, amount: i, customer: { id: i < 6 ? 'c-early' : 'c-late' }, note: "it's \"quoted\"" } }));
        }
        now = T0 + 20_000;
        await enqueueOne({ payload: 'not an object' });
        await enqueueOne({ payload: { orderId: 42 } });
        const ids = (jobs: JobRow[]) => jobs.map((j) => j.id);
        const want = (pick: (i: number) => boolean) => made.filter((_, i) => pick(i)).map((j) => j.id).reverse();

        expect(ids(await engine.listJobs({ payload: [{ path: ['orderId'], value: 'o-1' }], limit: 100 }))).toEqual(want((i) => i % 3 === 1));
        expect(ids(await engine.listJobs({ payload: [{ path: ['customer', 'id'], value: 'c-late' }, { path: ['orderId'], value: 'o-0' }], limit: 100 }))).toEqual(
          want((i) => i >= 6 && i % 3 === 0),
        );
        expect(ids(await engine.listJobs({ payload: [{ path: ['amount'], value: '7' }], limit: 100 }))).toEqual(want((i) => i === 7));
        expect((await engine.listJobs({ payload: [{ path: ['orderId'], value: '42' }], limit: 100 })).map((j) => j.payload)).toEqual([{ orderId: 42 }]);
        expect(await engine.listJobs({ payload: [{ path: ['orderId'], value: "o-1' OR '1'='1" }], limit: 100 })).toEqual([]);
        expect(await engine.listJobs({ payload: [{ path: ['missing'], value: 'x' }], limit: 100 })).toEqual([]);

        // Paging through a payload filter: each page continues below the last id of the one before.
        const first = await engine.listJobs({ payload: [{ path: ['orderId'], value: 'o-2' }], limit: 2 });
        const second = await engine.listJobs({ payload: [{ path: ['orderId'], value: 'o-2' }], limit: 2, before: first.at(-1)!.id });
        expect([...ids(first), ...ids(second)]).toEqual(want((i) => i % 3 === 2));

        expect(ids(await engine.listJobs({ createdAfter: T0 + 3000, createdBefore: T0 + 6000, limit: 100 }))).toEqual(want((i) => i >= 3 && i < 6));
        await expect(engine.listJobs({ payload: [{ path: ["a') OR 1=1 --"], value: 'x' }], limit: 1 })).rejects.toThrow(/payload/);
      });

      it('builds payload search indexes once; searches answer the same with them', async () => {
        const a = await enqueueOne({ payload: { orderId: 'o-1', customer: { id: 'c-1' } } });
        await enqueueOne({ payload: { orderId: 'o-2', customer: { id: 'c-2' } } });
        const built = await engine.ensurePayloadIndexes([['orderId'], ['customer', 'id']]);
        expect(built).toHaveLength(2);
        expect(built.every((name) => /^jobs_payload_[a-z0-9_]+_[0-9a-f]{8}$/.test(name))).toBe(true);
        expect(await engine.ensurePayloadIndexes([['orderId'], ['customer', 'id']])).toEqual([]);
        expect((await engine.listJobs({ payload: [{ path: ['orderId'], value: 'o-1' }], limit: 10 })).map((j) => j.id)).toEqual([a.id]);
        expect((await engine.listJobs({ payload: [{ path: ['customer', 'id'], value: 'c-1' }], limit: 10 })).map((j) => j.id)).toEqual([a.id]);
        await expect(engine.ensurePayloadIndexes([["x'); DROP TABLE jobs; --"]])).rejects.toThrow(/payload/);
      });

      it('reports per-queue counts for every state and the oldest queued job', async () => {
        await enqueueOne({ queue: 'q1', runAt: T0 - 50 });
        await enqueueOne({ queue: 'q1', runAt: T0 - 10 });
        await enqueueOne({ queue: 'q1', runAt: T0 + 100 });
        await enqueueOne({ queue: 'q2', handler: 'other' });
        const running = await leaseOne({ handlers: [{ name: 'other', max: 1 }] });
        await engine.complete(running.id, running.leaseToken, null);

        const stats = await engine.queueStats();
        const q1 = stats.find((s) => s.queue === 'q1')!;
        const q2 = stats.find((s) => s.queue === 'q2')!;
        for (const s of [q1, q2]) expect(Object.keys(s.counts).sort()).toEqual([...JOB_STATES].sort());
        expect(q1.counts).toMatchObject({ queued: 2, scheduled: 1, running: 0, succeeded: 0 });
        expect(q1.oldestQueuedAt).toBe(T0 - 50);
        expect(q2.counts).toMatchObject({ queued: 0, succeeded: 1 });
        expect(q2.oldestQueuedAt).toBeNull();
      });

      it('names the handlers with a queued job: not those with only scheduled, running or finished ones', async () => {
        await enqueueOne({ handler: 'queued' });
        await enqueueOne({ handler: 'later', runAt: T0 + 60_000 });
        await enqueueOne({ handler: 'running' });
        await leaseOne({ handlers: [{ name: 'running', max: 1 }] });
        await enqueueOne({ handler: 'done' });
        const done = await leaseOne({ handlers: [{ name: 'done', max: 1 }] });
        await engine.complete(done.id, done.leaseToken, null);

        const found = await engine.handlersWithQueuedJobs(['queued', 'later', 'running', 'done', 'unknown']);
        expect(found).toEqual(['queued']);
        expect(await engine.handlersWithQueuedJobs([])).toEqual([]);
      });
    });

    describe('notifications', () => {
      it('tells listeners which queues got due work; a throwing listener breaks nothing', async () => {
        const seen: string[] = [];
        engine.onWork(() => {
          throw new Error('listener bug');
        });
        const off = engine.onWork((queues) => seen.push(...queues));

        await enqueueOne({ queue: 'later', runAt: T0 + 1000 });
        await enqueueOne({ queue: 'now' });
        await waitFor(() => seen.includes('now'), 'a notification for queue "now"');
        expect(seen).not.toContain('later');

        now += 1000;
        await engine.stageDue();
        await waitFor(() => seen.includes('later'), 'a notification for staged queue "later"');

        off();
        const count = seen.length;
        await enqueueOne({ queue: 'after-off' });
        expect((await lease({ limit: 10 })).length).toBeGreaterThan(0);
        expect(seen.slice(count)).not.toContain('after-off');
      });

      it('names the handlers of the committed due jobs: enqueued, fanned out by an event, staged when due', async () => {
        const heard: Array<readonly string[] | undefined> = [];
        engine.onWork((_queues, handlers) => heard.push(handlers));
        const named = (handler: string) => heard.some((h) => h?.includes(handler));

        await enqueueOne({ handler: 'later', runAt: T0 + 1000 });
        await enqueueOne({ handler: 'now' });
        await waitFor(() => named('now'), 'a notification naming handler "now"');
        await engine.ingest([{ event: { id: 'fan', name: 'ev', data: null }, jobs: [newJob({ handler: 'fan-a' }), newJob({ handler: 'fan-b' })] }]);
        await waitFor(() => named('fan-a') && named('fan-b'), 'a notification naming both handlers the event fanned out to');
        // Named handlers only, never "any handler", and not the delayed job's handler before it is due.
        expect(heard.every((h) => h !== undefined)).toBe(true);
        expect(named('later')).toBe(false);

        now += 1000;
        await engine.stageDue();
        await waitFor(() => named('later'), 'a notification naming the staged job\'s handler "later"');
      });
    });

    describe('api keys', () => {
      it('creates, finds by hash, lists and revokes keys', async () => {
        const key: ApiKeyRow = {
          id: 'key-1',
          name: 'admin',
          hash: 'a'.repeat(64),
          scopes: ['admin', 'read'],
          handlers: null,
          createdAt: T0,
          expiresAt: null,
          revokedAt: null,
        };
        await engine.createKey(key);
        await engine.createKey({ ...key, id: 'key-2', name: 'worker', hash: 'b'.repeat(64), scopes: ['work'], handlers: ['billing.*', 'send-email'], createdAt: T0 + 1, expiresAt: T0 + 999 });
        expect(await engine.findKeyByHash(key.hash)).toEqual(key);
        expect(await engine.findKeyByHash('b'.repeat(64))).toMatchObject({ id: 'key-2', scopes: ['work'], handlers: ['billing.*', 'send-email'] });
        expect(await engine.findKeyByHash('c'.repeat(64))).toBeNull();
        expect((await engine.listKeys()).map((k) => k.id)).toEqual(['key-1', 'key-2']);

        now += 42;
        expect(await engine.revokeKey('key-1')).toBe(true);
        expect(await engine.findKeyByHash(key.hash)).toMatchObject({ revokedAt: T0 + 42 });
        expect(await engine.revokeKey('key-1')).toBe(false);
        expect(await engine.revokeKey('missing')).toBe(false);
      });
    });

    describe('meta', () => {
      it('gets, sets and overwrites values', async () => {
        expect(await engine.getMeta('node_id')).toBeNull();
        await engine.setMeta('node_id', 'n1');
        expect(await engine.getMeta('node_id')).toBe('n1');
        await engine.setMeta('node_id', 'n2');
        expect(await engine.getMeta('node_id')).toBe('n2');
      });

      it('updates a value atomically: concurrent read-modify-writes lose nothing; null leaves it as it is', async () => {
        const add = (item: string) => engine.updateMeta('list', (current) => JSON.stringify([...(current ? (JSON.parse(current) as string[]) : []), item]));
        const items = Array.from({ length: 20 }, (_, i) => `i${i}`);
        await Promise.all(items.map(add));
        expect((JSON.parse((await engine.getMeta('list'))!) as string[]).sort()).toEqual([...items].sort());
        const seen: Array<string | null> = [];
        expect(await engine.updateMeta('list', (current) => (seen.push(current), null))).toBe(await engine.getMeta('list'));
        expect(seen).toHaveLength(1);
        expect(await engine.updateMeta('absent', () => null)).toBeNull();
        expect(await engine.getMeta('absent')).toBeNull();
      });
    });

    describe('audit trail', () => {
      /** A stand-in for the real sealer (src/ops/audit/chain.ts): the engine only has to pass `previous` faithfully. */
      const seal: AuditSeal = (entry, previous) => ({
        ...entry,
        seq: (previous?.seq ?? 0) + 1,
        prevHash: previous?.hash ?? '0'.repeat(64),
        hash: `h${(previous?.seq ?? 0) + 1}`,
        signer: 'test-key',
        signature: 'sig',
      });
      const entry = (n: number): AuditEntry => ({
        time: new Date(T0 + n).toISOString(),
        actor: 'key_1',
        requestId: n % 2 === 0 ? `req-${n}` : null,
        action: 'job.cancel',
        target: `job:${n}`,
        before: { state: 'queued', n },
        after: n % 3 === 0 ? undefined : { state: 'cancelled' },
      });

      it('chains concurrent appends without gaps: each sees the record before it', async () => {
        const records = await Promise.all(Array.from({ length: 25 }, (_, i) => engine.appendAudit(entry(i), seal)));
        const all = await engine.readAudit({ limit: 100 });
        expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
        all.forEach((r, i) => expect(r.prevHash).toBe(i === 0 ? '0'.repeat(64) : all[i - 1]!.hash));
        expect(new Set(records.map((r) => r.seq)).size).toBe(25);
      });

      it('stores every field as given (undefined before/after reads back as null)', async () => {
        const written = await engine.appendAudit(entry(3), seal);
        const [read] = await engine.readAudit({ limit: 10 });
        expect(read).toEqual({ ...written, after: null });
        expect(read).toMatchObject({ requestId: null, target: 'job:3', before: { state: 'queued', n: 3 }, signer: 'test-key' });
      });

      it('pages newest first with a cursor, and oldest first after a seq', async () => {
        for (let i = 0; i < 7; i++) await engine.appendAudit(entry(i), seal);
        expect((await engine.listAudit({ limit: 3 })).map((r) => r.seq)).toEqual([7, 6, 5]);
        expect((await engine.listAudit({ limit: 3, before: 5 })).map((r) => r.seq)).toEqual([4, 3, 2]);
        expect((await engine.listAudit({ limit: 3, before: 2 })).map((r) => r.seq)).toEqual([1]);
        expect((await engine.readAudit({ limit: 2, after: 3 })).map((r) => r.seq)).toEqual([4, 5]);
        expect(await engine.readAudit({ limit: 5, after: 7 })).toEqual([]);
      });

      it('a sealer that throws appends nothing', async () => {
        await engine.appendAudit(entry(1), seal);
        await expect(engine.appendAudit(entry(2), () => { throw new Error('no key'); })).rejects.toThrow('no key');
        expect((await engine.readAudit({ limit: 10 })).map((r) => r.seq)).toEqual([1]);
      });
    });

    describe('backup and restore support', () => {
      it('backupTo writes a copy and reports its schema version and row counts', async () => {
        await enqueueOne();
        await enqueueOne();
        await engine.setMeta('k', 'v');
        const dir = mkdtempSync(join(tmpdir(), 'drover-conf-backup-'));
        try {
          const file = join(dir, 'copy');
          const snapshot = await engine.backupTo(file);
          expect(existsSync(file)).toBe(true);
          expect(snapshot.schemaVersion).toBe((await engine.migrate()).current);
          expect(snapshot.counts).toMatchObject({ jobs: 2, meta: 1, attempts: 0, events: 0 });
          await expect(engine.backupTo(file)).rejects.toThrow(/exists/);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });

      it('reclaimAll requeues every running job whoever holds it, fencing out the old holders, never poisoning', async () => {
        await enqueueOne();
        await enqueueOne();
        await enqueueOne();
        const a = await leaseOne({ workerId: 'node-a' });
        const b = await leaseOne({ workerId: 'node-b' });
        await markStarted(a, b);
        const reclaimed = await engine.reclaimAll();
        expect(reclaimed.map((j) => j.id).sort()).toEqual([a.id, b.id].sort());
        expect(reclaimed.every((j) => j.state === 'queued')).toBe(true);
        for (const held of [a, b]) {
          expect(await getJob(held.id)).toMatchObject({ state: 'queued', leaseToken: null, crashes: 1 });
          expect((await engine.getAttempts(held.id)).at(-1)?.outcome).toBe('crashed');
          expect(await engine.complete(held.id, held.leaseToken, null)).toEqual({ ok: false, reason: 'stale_lease' });
        }
        expect(await engine.reclaimAll()).toEqual([]);
      });
    });

    describe('nodes', () => {
      const a1 = { nodeId: 'node-a', incarnation: 'a-1' };
      const b1 = { nodeId: 'node-b', incarnation: 'b-1' };
      const dead = (staleAfterMs: number, exceptNodeId?: string, poisonAfter = 3) =>
        engine.reclaimDeadNodes({ staleAfterMs, poisonAfter, ...(exceptNodeId === undefined ? {} : { exceptNodeId }) });

      it('registers nodes and records their heartbeats', async () => {
        await engine.registerNode(a1);
        now += 10;
        await engine.registerNode(b1);
        now += 500;
        expect(await engine.heartbeatNode(a1)).toBe('ok');
        expect(await engine.listNodes()).toEqual([
          { ...a1, startedAt: T0, heartbeatAt: T0 + 510 },
          { ...b1, startedAt: T0 + 10, heartbeatAt: T0 + 10 },
        ]);
      });

      it('reclaims the jobs of a node silent past the window, as crashed, and forgets the node', async () => {
        await engine.registerNode(a1);
        await engine.registerNode(b1);
        await engine.enqueue([newJob(), newJob(), newJob()]);
        const held = await lease({ workerId: 'node-a', limit: 2 });
        const alive = await leaseOne({ workerId: 'node-b' });
        await markStarted(...held, alive);

        now += 3000; // exactly the window: not dead yet
        expect(await engine.heartbeatNode(b1)).toBe('ok');
        expect(await dead(3000)).toEqual({ nodes: [], jobs: [] });

        now += 1;
        const result = await dead(3000);
        expect(result.nodes).toEqual(['node-a']);
        expect(result.jobs.map((j) => j.id).sort()).toEqual(held.map((j) => j.id).sort());
        expect(result.jobs.every((j) => j.state === 'queued')).toBe(true);
        for (const job of held) {
          expect(await getJob(job.id)).toMatchObject({ state: 'queued', crashes: 1, leaseToken: null });
          expect((await engine.getAttempts(job.id)).map((a) => [a.outcome, a.workerId])).toEqual([['crashed', 'node-a']]);
          expect(await engine.complete(job.id, job.leaseToken, null)).toEqual({ ok: false, reason: 'stale_lease' });
        }
        expect((await getJob(alive.id)).state).toBe('running');
        expect((await engine.listNodes()).map((n) => n.nodeId)).toEqual(['node-b']);
        expect(await dead(3000)).toEqual({ nodes: [], jobs: [] });

        // The silent node comes back: its row is gone, so it learns it was declared dead.
        expect(await engine.heartbeatNode(a1)).toBe('unknown');
      });

      it('never declares the caller dead, and poisons jobs reclaimed too often', async () => {
        await engine.registerNode(a1);
        await engine.registerNode(b1);
        const job = await startJob({ workerId: 'node-b' });
        now += 10_000;
        // expiredAt: node-b's last heartbeat (its registration, 10 s ago) plus the 3 s stale window.
        expect((await dead(3000, 'node-a', 1)).jobs).toEqual([{ id: job.id, handler: 'h', queue: 'default', state: 'dead', started: true, expiredAt: now - 7000 }]);
        expect(await getJob(job.id)).toMatchObject({ state: 'dead', deadReason: 'poison' });
        expect((await engine.listNodes()).map((n) => n.nodeId)).toEqual(['node-a']);
      });

      it('a new incarnation supersedes the old one; deregistering removes only its own row', async () => {
        await engine.registerNode(a1);
        const a2 = { nodeId: 'node-a', incarnation: 'a-2' };
        await engine.registerNode(a2);
        expect(await engine.heartbeatNode(a1)).toBe('superseded');
        expect(await engine.heartbeatNode(a2)).toBe('ok');
        await engine.deregisterNode(a1);
        expect((await engine.listNodes()).map((n) => n.incarnation)).toEqual(['a-2']);
        await engine.deregisterNode(a2);
        expect(await engine.listNodes()).toEqual([]);
        expect(await engine.heartbeatNode(a2)).toBe('unknown');
      });
    });
  });
}
