/**
 * Durable execution's store guarantees (`DurableStore`, and what `ingest`,
 * `stageDue`, `cancel` and `prune` do for it), through the interface only, so
 * the same suite runs on every engine. Time is the injected fake clock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DURABLE_DEFAULTS, type SuspendRequest } from '../../src/core/durable.js';
import type { JobRow, LeasedJob, NewJob } from '../../src/core/types.js';
import type { LeaseRequest, StorageEngine } from '../../src/store/engine.js';
import { instrumentStore } from '../../src/store/instrumented.js';
import type { StoreFactory } from './conformance.js';

const T0 = 1_700_000_000_000;

export function describeDurableConformance(name: string, factory: StoreFactory): void {
  describe(`durable store conformance: ${name}`, () => {
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
    const enqueueOne = async (over: Partial<NewJob> = {}): Promise<JobRow> => (await engine.enqueue([newJob(over)]))[0]!.job;
    const leaseOne = async (over: Partial<LeaseRequest> = {}): Promise<LeasedJob> => {
      const jobs = await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 100 }], limit: 1, leaseMs: 30_000, ...over });
      expect(jobs).toHaveLength(1);
      return jobs[0]!;
    };
    /** A running job: enqueued (optionally from an event) and leased. */
    const running = async (over: Partial<NewJob> = {}, tenant?: string): Promise<LeasedJob> => {
      if (tenant !== undefined) {
        await engine.ingest([{ event: { id: `origin-${now}-${Math.random()}`, name: 'origin', data: null, tenant }, jobs: [newJob(over)] }]);
      } else {
        await enqueueOne(over);
      }
      return leaseOne();
    };
    const step = (name: string, seq: number, result: unknown = { ok: name }) => ({
      name,
      seq,
      kind: 'run' as const,
      startedAt: now,
      result,
      limits: DURABLE_DEFAULTS,
    });
    const waitFor = (over: Partial<SuspendRequest> = {}): SuspendRequest => ({
      step: 'wait',
      seq: 0,
      kind: 'event',
      startedAt: now,
      wakeAt: now + 60_000,
      events: ['paid'],
      match: { 'data.order': 'o-1' },
      ...over,
    });
    const ingest = async (id: string, name: string, data: unknown, tenant?: string) =>
      (await engine.ingest([{ event: { id, name, data, ...(tenant === undefined ? {} : { tenant }) }, jobs: [] }]))[0]!;
    const suspended = async (job: LeasedJob, request: SuspendRequest) => {
      const result = await engine.suspend(job.id, job.leaseToken, request);
      if (!result.ok || !result.suspended) throw new Error(`expected a suspension, got ${JSON.stringify(result)}`);
      return result;
    };

    describe('steps', () => {
      it('records steps fenced by the lease and returns them in seq order', async () => {
        const job = await running();
        expect(await engine.getSteps(job.id)).toEqual([]);
        now += 5;
        const b = await engine.recordStep(job.id, job.leaseToken, step('b', 1, [1, 2]));
        const a = await engine.recordStep(job.id, job.leaseToken, step('a', 0, null));
        expect(b).toMatchObject({ ok: true, step: { jobId: job.id, name: 'b', seq: 1, kind: 'run', attempt: 1, result: [1, 2], resultBytes: 5, timedOut: false } });
        expect(a.ok).toBe(true);
        const steps = await engine.getSteps(job.id);
        expect(steps.map((s) => s.name)).toEqual(['a', 'b']);
        expect(steps[0]).toMatchObject({ result: null, resultBytes: 4, startedAt: now, finishedAt: now });
      });

      it('refuses a stale or unknown lease and writes nothing', async () => {
        const job = await running();
        expect(await engine.recordStep(job.id, 'not-the-token', step('a', 0))).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await engine.recordStep('999999', job.leaseToken, step('a', 0))).toEqual({ ok: false, reason: 'not_found' });
        expect(await engine.recordStep('garbage', job.leaseToken, step('a', 0))).toEqual({ ok: false, reason: 'not_found' });
        // A lease that ended (released, then leased again) is stale too.
        await engine.release(job.id, job.leaseToken);
        const again = await leaseOne();
        expect(await engine.recordStep(job.id, job.leaseToken, step('a', 0))).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await engine.suspend(job.id, job.leaseToken, waitFor())).toEqual({ ok: false, reason: 'stale_lease' });
        expect(await engine.getSteps(job.id)).toEqual([]);
        expect(await engine.pendingWait(job.id)).toBeNull();
        expect((await engine.getJob(job.id))!.state).toBe('running');
        expect((await engine.recordStep(again.id, again.leaseToken, step('a', 0))).ok).toBe(true);
      });

      it('refuses a second step of the same name (or seq)', async () => {
        const job = await running();
        expect((await engine.recordStep(job.id, job.leaseToken, step('a', 0, 1))).ok).toBe(true);
        expect(await engine.recordStep(job.id, job.leaseToken, step('a', 1, 2))).toEqual({ ok: false, reason: 'duplicate' });
        expect(await engine.recordStep(job.id, job.leaseToken, step('b', 0, 3))).toEqual({ ok: false, reason: 'duplicate' });
        expect((await engine.getSteps(job.id)).map((s) => s.result)).toEqual([1]);
      });

      it('refuses each limit and writes nothing', async () => {
        const job = await running();
        const limits = { maxStepResultBytes: 10, maxStepsPerJob: 2, maxStateBytesPerJob: 14 };
        const big = await engine.recordStep(job.id, job.leaseToken, { ...step('a', 0, 'x'.repeat(20)), limits });
        expect(big).toMatchObject({ ok: false, reason: 'limit', limit: 'step_result_too_large' });
        expect((big as { message: string }).message).toMatch(/maxStepResultBytes/);
        expect(await engine.getSteps(job.id)).toEqual([]);

        expect((await engine.recordStep(job.id, job.leaseToken, { ...step('a', 0, '12345678'), limits })).ok).toBe(true); // 10 bytes
        const state = await engine.recordStep(job.id, job.leaseToken, { ...step('b', 1, '123'), limits }); // 10 + 5 > 14
        expect(state).toMatchObject({ ok: false, reason: 'limit', limit: 'job_state_too_large' });
        expect((await engine.recordStep(job.id, job.leaseToken, { ...step('b', 1, 1), limits })).ok).toBe(true); // 10 + 1
        const many = await engine.recordStep(job.id, job.leaseToken, { ...step('c', 2, 1), limits });
        expect(many).toMatchObject({ ok: false, reason: 'limit', limit: 'too_many_steps' });
        expect((await engine.getSteps(job.id)).map((s) => s.name)).toEqual(['a', 'b']);
      });

      it('keeps steps when a dead or cancelled job is retried (memoized)', async () => {
        const job = await running();
        await engine.recordStep(job.id, job.leaseToken, step('a', 0));
        await engine.fail(job.id, job.leaseToken, { error: 'x', outcome: 'failed', retryAt: null });
        await engine.retry(job.id);
        expect((await engine.getSteps(job.id)).map((s) => s.name)).toEqual(['a']);
      });
    });

    describe('suspend', () => {
      it('suspends a sleep: no lease, no retry spent, attempt outcome suspended, wakes at its time', async () => {
        const job = await running({ maxAttempts: 1 });
        const result = await suspended(job, { step: 'nap', seq: 0, kind: 'sleep', startedAt: now, wakeAt: now + 1000 });
        expect(result.wait).toMatchObject({ jobId: job.id, handler: 'h', kind: 'sleep', state: 'pending', wakeAt: T0 + 1000, step: 'nap', since: null });
        expect(result.wait.id).toMatch(/^wt_[0-9a-f]{44}$/);
        expect(result.job).toMatchObject({ state: 'suspended', leaseToken: null, leaseExpiresAt: null, workerId: null, attempts: 0, runAt: T0 + 1000 });
        expect((await engine.getAttempts(job.id)).map((a) => a.outcome)).toEqual(['suspended']);
        expect(await engine.pendingWait(job.id)).toEqual(result.wait);
        expect(await engine.getWait(result.wait.id)).toEqual(result.wait);
        expect(await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 10 }], limit: 10, leaseMs: 1000 })).toEqual([]);

        const early = await engine.stageDue();
        expect(early.woken ?? []).toEqual([]);
        expect(early.nextDueAt).toBe(T0 + 1000);

        now += 1000;
        const staged = await engine.stageDue();
        expect(staged.woken).toHaveLength(1);
        expect(staged.woken![0]).toMatchObject({ id: result.wait.id, state: 'resolved', resolvedAt: now });
        expect((await engine.getJob(job.id))!.state).toBe('queued');
        expect(await engine.getSteps(job.id)).toEqual([
          expect.objectContaining({ name: 'nap', kind: 'sleep', result: null, timedOut: false, startedAt: T0, finishedAt: now, attempt: 1 }),
        ]);
        expect(await engine.pendingWait(job.id)).toBeNull();
        // The attempt budget was not spent: maxAttempts 1 still leases and can fail once more.
        const again = await leaseOne();
        expect(again).toMatchObject({ id: job.id, attempts: 1 });
        expect((await engine.stageDue()).woken ?? []).toEqual([]);
      });

      it('stores a sleep whose time already passed without suspending', async () => {
        const job = await running();
        const result = await engine.suspend(job.id, job.leaseToken, { step: 'nap', seq: 0, kind: 'sleep', startedAt: now - 10, wakeAt: now });
        expect(result).toMatchObject({ ok: true, suspended: false, step: { name: 'nap', kind: 'sleep', result: null } });
        expect((await engine.getJob(job.id))!.state).toBe('running');
        // Asked again (a retried call): the stored step stands.
        expect(await engine.suspend(job.id, job.leaseToken, { step: 'nap', seq: 0, kind: 'sleep', startedAt: now, wakeAt: now + 5000 })).toMatchObject({
          ok: true,
          suspended: false,
        });
      });

      it('a suspended job holds no concurrency slot and does not count toward maxDepth', async () => {
        const first = await running({ concurrencyKey: 'k' });
        await enqueueOne({ concurrencyKey: 'k' });
        expect(await engine.lease({ workerId: 'w1', handlers: [{ name: 'h', max: 10 }], limit: 10, leaseMs: 1000 })).toEqual([]);
        await suspended(first, { step: 'ask', seq: 0, kind: 'interrupt', startedAt: now, wakeAt: null, prompt: 'ok?' });
        const second = await leaseOne();
        expect(second.id).not.toBe(first.id);

        const limits = { queueLimits: new Map([['default', { maxDepth: 2 }]]) };
        // Unfinished: `second` (running) only; the suspended one does not count.
        expect((await engine.enqueue([newJob()], limits))[0]!.created).toBe(true);
        const stats = (await engine.queueStats()).find((q) => q.queue === 'default')!;
        expect(stats.counts).toMatchObject({ suspended: 1, running: 1, queued: 1 });
        expect((await engine.listJobs({ state: 'suspended', limit: 10 })).map((j) => j.id)).toEqual([first.id]);
      });

      it('reclaims never touch suspended jobs', async () => {
        const job = await running();
        await suspended(job, { step: 'nap', seq: 0, kind: 'sleep', startedAt: now, wakeAt: now + 3_600_000 });
        now += 60_000; // past the old lease's expiry
        expect(await engine.reapExpired({ poisonAfter: 1 })).toEqual([]);
        expect(await engine.reclaimWorker('w1', { poisonAfter: 1 })).toEqual([]);
        expect(await engine.reclaimAll()).toEqual([]);
        expect((await engine.getJob(job.id))!.state).toBe('suspended');
      });
    });

    describe('waiting for events', () => {
      it('resolves from the look-back at suspend: an event accepted since the step began', async () => {
        const job = await running();
        await ingest('before', 'paid', { order: 'o-1' });
        now += 10;
        const startedAt = now;
        await ingest('other', 'paid', { order: 'o-2' });
        await ingest('wrong-name', 'refunded', { order: 'o-1' });
        now += 5;
        await ingest('hit', 'paid', { order: 'o-1' });
        now += 5;
        const result = await engine.suspend(job.id, job.leaseToken, waitFor({ startedAt }));
        expect(result).toMatchObject({
          ok: true,
          suspended: false,
          step: { name: 'wait', kind: 'event', result: { id: 'hit', name: 'paid', data: { order: 'o-1' }, tenant: null, receivedAt: startedAt + 5 } },
        });
        expect((await engine.getJob(job.id))!.state).toBe('running');
        expect(await engine.pendingWait(job.id)).toBeNull();
      });

      it('looks back past many events of the name that do not match', async () => {
        const job = await running();
        const startedAt = now;
        const noise = Array.from({ length: 450 }, (_, i) => ({ event: { id: `noise-${i}`, name: 'paid', data: { order: 'o-2' } }, jobs: [] }));
        await engine.ingest(noise);
        now += 1;
        await engine.ingest([{ event: { id: 'the-one', name: 'paid', data: { order: 'o-1' } }, jobs: [] }]);
        const result = await engine.suspend(job.id, job.leaseToken, waitFor({ startedAt }));
        expect(result).toMatchObject({ ok: true, suspended: false, step: { result: { id: 'the-one' } } });
      });

      it('ignores events from before the step began, and another tenant\'s events', async () => {
        const job = await running({}, 'acme');
        await ingest('old', 'paid', { order: 'o-1' }, 'acme');
        now += 10;
        const startedAt = now;
        await ingest('foreign', 'paid', { order: 'o-1' }, 'globex');
        const result = await suspended(job, waitFor({ startedAt }));
        expect(result.wait).toMatchObject({ tenant: 'acme', kind: 'event', events: ['paid'], match: { 'data.order': 'o-1' }, since: startedAt });

        expect((await ingest('foreign-2', 'paid', { order: 'o-1' }, 'globex')).resolvedWaits ?? []).toEqual([]);
        const hit = await ingest('ours', 'paid', { order: 'o-1' }, 'acme');
        expect(hit.resolvedWaits).toHaveLength(1);
      });

      it('ingest resolves a pending wait in the same transaction, once', async () => {
        const job = await running();
        const { wait } = await suspended(job, waitFor({ events: ['paid', 'settled'] }));
        now += 100;
        const miss = await ingest('e-miss', 'paid', { order: 'o-2' });
        expect(miss.resolvedWaits ?? []).toEqual([]);
        expect((await engine.getJob(job.id))!.state).toBe('suspended');

        const hit = await ingest('e-hit', 'settled', { order: 'o-1' });
        expect(hit.resolvedWaits).toHaveLength(1);
        const resolved = hit.resolvedWaits![0]!;
        expect(resolved.wait).toMatchObject({ id: wait.id, state: 'resolved', resolvedBy: 'event:e-hit', resolvedAt: now });
        expect(resolved.event.id).toBe('e-hit');
        expect(resolved.job).toMatchObject({ id: job.id, state: 'queued' });
        expect(await engine.getSteps(job.id)).toEqual([
          expect.objectContaining({ name: 'wait', kind: 'event', result: expect.objectContaining({ id: 'e-hit', name: 'settled' }), timedOut: false }),
        ]);

        // Never resolved again: another matching event, or the same event id again.
        expect((await ingest('e-again', 'paid', { order: 'o-1' })).resolvedWaits ?? []).toEqual([]);
        expect((await ingest('e-hit', 'settled', { order: 'o-1' })).resolvedWaits ?? []).toEqual([]);
        expect((await engine.getWait(wait.id))!.resolvedBy).toBe('event:e-hit');
        // The timeout passing later changes nothing either.
        now += 120_000;
        expect((await engine.stageDue()).woken ?? []).toEqual([]);
      });

      it('one event wakes every job waiting for it', async () => {
        const a = await running();
        await suspended(a, waitFor());
        const b = await running();
        await suspended(b, waitFor({ match: {} }));
        const hit = await ingest('e', 'paid', { order: 'o-1' });
        expect(hit.resolvedWaits!.map((r) => r.job.id).sort()).toEqual([a.id, b.id].sort());
      });

      it('times out: the step is stored with a null result and timedOut', async () => {
        const job = await running();
        const { wait } = await suspended(job, waitFor({ wakeAt: now + 500 }));
        expect((await engine.stageDue()).nextDueAt).toBe(T0 + 500);
        now += 500;
        const staged = await engine.stageDue();
        expect(staged.woken).toEqual([expect.objectContaining({ id: wait.id, state: 'timed_out', resolvedBy: null })]);
        expect((await engine.getJob(job.id))!.state).toBe('queued');
        expect(await engine.getSteps(job.id)).toEqual([expect.objectContaining({ name: 'wait', result: null, timedOut: true })]);
        expect((await ingest('late', 'paid', { order: 'o-1' })).resolvedWaits ?? []).toEqual([]);
      });

      it('a wait whose timeout passed before it was recorded times out at once', async () => {
        const job = await running();
        const result = await engine.suspend(job.id, job.leaseToken, waitFor({ startedAt: now - 100, wakeAt: now - 1 }));
        expect(result).toMatchObject({ ok: true, suspended: false, step: { timedOut: true, result: null } });
      });
    });

    describe('interrupts', () => {
      const ask = (over: Partial<SuspendRequest> = {}): SuspendRequest => ({
        step: 'approve',
        seq: 0,
        kind: 'interrupt',
        startedAt: now,
        wakeAt: now + 1000,
        prompt: 'Refund?',
        schema: { type: 'object' },
        ...over,
      });

      it('resumes once (compare-and-set), storing the input as the step result', async () => {
        const job = await running();
        const { wait } = await suspended(job, ask());
        expect(wait).toMatchObject({ kind: 'interrupt', prompt: 'Refund?', schema: { type: 'object' }, events: null, match: null });
        expect(await engine.pendingInterrupts()).toEqual({ count: 1, oldestCreatedAt: T0 });
        now += 7;
        const resumed = await engine.resumeWait(wait.id, { approve: true }, 'key_1');
        expect(resumed).toMatchObject({ ok: true, wait: { state: 'resolved', resolvedBy: 'key_1', resolvedAt: now }, job: { state: 'queued', id: job.id } });
        expect(await engine.getSteps(job.id)).toEqual([expect.objectContaining({ name: 'approve', kind: 'interrupt', result: { approve: true } })]);
        expect(await engine.resumeWait(wait.id, { approve: false }, 'key_2')).toMatchObject({
          ok: false,
          reason: 'conflict',
          wait: { state: 'resolved', resolvedBy: 'key_1' },
        });
        expect(await engine.pendingInterrupts()).toEqual({ count: 0, oldestCreatedAt: null });
        expect(await engine.resumeWait('wt_nope', 1, 'k')).toEqual({ ok: false, reason: 'not_found' });
      });

      it('only interrupts are resumed', async () => {
        const job = await running();
        const { wait } = await suspended(job, waitFor());
        expect(await engine.resumeWait(wait.id, 1, 'k')).toEqual({ ok: false, reason: 'not_found' });
      });

      it('two concurrent resumes: exactly one wins', async () => {
        const job = await running();
        const { wait } = await suspended(job, ask());
        const results = await Promise.all([engine.resumeWait(wait.id, 'a', 'k1'), engine.resumeWait(wait.id, 'b', 'k2')]);
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        expect(results.filter((r) => !r.ok && r.reason === 'conflict')).toHaveLength(1);
        const winner = results.find((r) => r.ok)!;
        expect((await engine.getSteps(job.id))[0]!.result).toBe(winner.ok && winner.wait.resolvedBy === 'k1' ? 'a' : 'b');
      });

      it('a resume racing the timeout: exactly one outcome', async () => {
        const job = await running();
        const { wait } = await suspended(job, ask());
        now += 1000;
        const [staged, resumed] = await Promise.all([engine.stageDue(), engine.resumeWait(wait.id, 'late', 'k')]);
        const timedOut = (staged.woken ?? []).length === 1;
        expect(timedOut).toBe(!resumed.ok);
        const stored = (await engine.getWait(wait.id))!;
        expect(stored.state).toBe(timedOut ? 'timed_out' : 'resolved');
        expect(await engine.getSteps(job.id)).toHaveLength(1);
        expect((await engine.getJob(job.id))!.state).toBe('queued');
      });

      it('lists waits newest first with filters and a keyset cursor', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const job = await running();
          ids.push((await suspended(job, ask({ step: `a${i}` }))).wait.id);
          now += 1;
        }
        const sleeper = await running();
        await suspended(sleeper, { step: 'nap', seq: 0, kind: 'sleep', startedAt: now, wakeAt: now + 10 });
        await engine.resumeWait(ids[0]!, null, 'k');

        const page1 = await engine.listWaits({ kind: 'interrupt', limit: 2 });
        expect(page1.map((w) => w.id)).toEqual([ids[2], ids[1]]);
        const page2 = await engine.listWaits({ kind: 'interrupt', limit: 2, before: page1[1]!.id });
        expect(page2.map((w) => w.id)).toEqual([ids[0]]);
        expect((await engine.listWaits({ kind: 'interrupt', state: 'pending', limit: 10 })).map((w) => w.id)).toEqual([ids[2], ids[1]]);
        expect(await engine.listWaits({ state: 'pending', limit: 10 })).toHaveLength(3);
        expect(await engine.listWaits({ handler: 'other', limit: 10 })).toEqual([]);
        expect(await engine.pendingInterrupts()).toEqual({ count: 2, oldestCreatedAt: T0 + 1 });
      });
    });

    describe('instrumentation', () => {
      it('the instrumented store times every durable operation', async () => {
        const timed = new Set<string>();
        const store = instrumentStore(engine, { timer: (op) => ({ observe: () => void timed.add(op) }) });
        const job = await running();
        await store.recordStep(job.id, job.leaseToken, step('a', 0));
        await store.getSteps(job.id);
        const result = await store.suspend(job.id, job.leaseToken, { step: 'ask', seq: 1, kind: 'interrupt', startedAt: now, wakeAt: null });
        if (!result.ok || !result.suspended) throw new Error('expected a suspension');
        await store.getWait(result.wait.id);
        await store.pendingWait(job.id);
        await store.listWaits({ limit: 1 });
        await store.pendingInterrupts();
        await store.resumeWait(result.wait.id, null, 'k');
        await new Promise((resolve) => setImmediate(resolve));
        for (const op of ['recordStep', 'getSteps', 'suspend', 'getWait', 'pendingWait', 'listWaits', 'pendingInterrupts', 'resumeWait']) {
          expect(timed, op).toContain(op);
        }
      });
    });

    describe('operator actions and retention', () => {
      it('cancels a suspended job and its wait; nothing resolves it later', async () => {
        const job = await running();
        const { wait } = await suspended(job, waitFor());
        const cancelled = await engine.cancel(job.id);
        expect(cancelled).toMatchObject({ state: 'cancelled' });
        expect(await engine.getWait(wait.id)).toMatchObject({ state: 'cancelled', resolvedAt: now });
        expect(await engine.pendingWait(job.id)).toBeNull();
        expect((await ingest('late', 'paid', { order: 'o-1' })).resolvedWaits ?? []).toEqual([]);
        now += 120_000;
        expect((await engine.stageDue()).woken ?? []).toEqual([]);
        expect((await engine.getJob(job.id))!.state).toBe('cancelled');

        const interrupted = await running();
        const ask = await suspended(interrupted, { step: 'ask', seq: 0, kind: 'interrupt', startedAt: now, wakeAt: null });
        await engine.cancel(interrupted.id);
        expect(await engine.resumeWait(ask.wait.id, 1, 'k')).toMatchObject({ ok: false, reason: 'conflict', wait: { state: 'cancelled' } });

        // Cancelling a suspended job leaves the queue depth right: room for exactly one more.
        const limits = { queueLimits: new Map([['default', { maxDepth: 1 }]]) };
        expect((await engine.enqueue([newJob()], limits))[0]!.created).toBe(true);
        await expect(engine.enqueue([newJob()], limits)).rejects.toMatchObject({ code: 'queue_full' });
      });

      it('prune deletes steps and waits with their jobs', async () => {
        const job = await running();
        await engine.recordStep(job.id, job.leaseToken, step('a', 0));
        const { wait } = await suspended(job, waitFor({ seq: 1 }));
        await engine.cancel(job.id);
        now += 1000;
        expect(await engine.prune({ finishedBefore: now, deadBefore: now, eventsBefore: 0, batchSize: 10 })).toMatchObject({ jobs: 1 });
        expect(await engine.getSteps(job.id)).toEqual([]);
        expect(await engine.getWait(wait.id)).toBeNull();
        // Its wait's event names went with it: an event matching it resolves nothing.
        expect((await ingest('e', 'paid', { order: 'o-1' })).resolvedWaits ?? []).toEqual([]);
      });
    });
  });
}
