/**
 * The thread pool hands a thread several jobs in one message and gets the
 * results of jobs it ran back to back in one message. These tests pin what
 * that may and may not cost: a job's result is never lost silently, a job is
 * timed from when it really starts, and when a thread is killed each of its
 * jobs is accounted for (finished: released to run again; running: failed;
 * never started: run on the replacement thread). Real threads, real handlers.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigModule } from '../../src/cli/load-config.js';
import { resolveConfig, type ResolvedHandler } from '../../src/core/config.js';
import type { LeasedJob } from '../../src/core/types.js';
import { LazyAbortController, type RunOutcome } from '../../src/runtime/job-runner.js';
import { ThreadPool, type ThreadRestartReason } from '../../src/runtime/thread-pool.js';

const configPath = fileURLToPath(new URL('../supervision/fixtures/pool.config.mjs', import.meta.url));
let pool: ThreadPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function setup(resultHoldMs?: number) {
  const raw = (await loadConfigModule(configPath)) as Record<string, unknown>;
  const config = resolveConfig({ ...raw, databaseUrl: ':memory:' }, {});
  const { handlers } = config;
  const restarts: ThreadRestartReason[] = [];
  pool = new ThreadPool({ configPath, restartInitialMs: 1, restartMaxMs: 10, ...(resultHoldMs ? { resultHoldMs } : {}), onRestart: (_h, reason) => restarts.push(reason) });
  let seq = 0;
  const run = (name: string, payload: Record<string, unknown>) => {
    const handler = handlers.get(name) as ResolvedHandler;
    const job = { id: `job-${++seq}`, handler: name, queue: 'default', attempts: 1, maxAttempts: 3, payload, event: null } as unknown as LeasedJob;
    let aborted = false;
    const controller = new LazyAbortController();
    const outcome = pool!.run({ handler, job, controller, log: () => { throw new Error('no logging here'); }, heartbeat: async () => true, isShutdownAborted: () => aborted });
    return { outcome, controller, shutdown: () => { aborted = true; controller.abort(new Error('shutting down')); } };
  };
  // Start the thread, so the jobs under test are posted together to a ready thread.
  const warm = async (name: string) => expect(await run(name, { n: 0 }).outcome).toMatchObject({ kind: 'succeeded' });
  return { run, warm, restarts };
}

const succeeded = (n: number): RunOutcome => ({ kind: 'succeeded', result: { n } });

describe('thread pool', () => {
  it('runs jobs posted together, in order, and answers each', async () => {
    const { run, warm } = await setup();
    await warm('quick');
    const outcomes = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => run('quick', { n }).outcome));
    expect(outcomes).toEqual([1, 2, 3, 4, 5, 6].map(succeeded));
  });

  it('releases a finished job whose result was still held when a later job on its thread hit the timeout', async () => {
    // A hold far longer than the job, so that a thread preempted between the two jobs still holds it.
    const { run, warm, restarts } = await setup(10_000);
    await warm('mixed');
    const done = run('mixed', { n: 1 });
    const spin = run('mixed', { spin: true });
    const behind = run('mixed', { n: 2 });
    // n:1 ran, but its result waited for the spinning job behind it and died with the thread.
    expect(await done.outcome).toEqual({ kind: 'aborted', reason: 'thread_lost' });
    const failed = await spin.outcome;
    expect(failed).toMatchObject({ kind: 'failed', timedOut: true, killed: false });
    expect((failed as { error: Error }).error.message).toMatch(/within its timeout of 300 ms/);
    // Never started: it runs on the replacement thread, unspent.
    expect(await behind.outcome).toEqual(succeeded(2));
    expect(restarts).toEqual(['timeout']);
  });

  it('posts the result of a job that ran for more than a couple of milliseconds before the next job starts', async () => {
    const { run, warm } = await setup();
    await warm('mixed');
    // Busy, then awaiting: either way the job took long enough that its result is not held.
    const busy = run('mixed', { busyMs: 10, n: 1 });
    const waiting = run('mixed', { waitMs: 10, n: 2 });
    const spin = run('mixed', { spin: true });
    expect(await busy.outcome).toEqual(succeeded(1));
    expect(await waiting.outcome).toEqual(succeeded(2));
    expect(await spin.outcome).toMatchObject({ kind: 'failed', timedOut: true });
  });

  it('does not hold the results of slow jobs for the jobs after them', async () => {
    const { run, warm } = await setup();
    await warm('slow-sync');
    const jobs = [1, 2, 3, 4].map((n) => run('slow-sync', { n }));
    const answeredAt: number[] = [];
    await Promise.all(jobs.map(({ outcome }, i) => outcome.then(() => (answeredAt[i] = performance.now()))));
    // Each job busy-waits 20 ms, so each answer comes about 20 ms after the one before.
    for (let i = 1; i < 4; i++) expect(answeredAt[i]! - answeredAt[i - 1]!).toBeGreaterThanOrEqual(10);
  });

  it('times a queued job from when it starts, not from when it was posted', async () => {
    const { run, warm } = await setup();
    await warm('slow-sync');
    // 30 jobs of 20 ms each: 600 ms in all, past the 400 ms timeout, but none over it.
    const outcomes = await Promise.all(Array.from({ length: 30 }, (_, n) => run('slow-sync', { n }).outcome));
    expect(outcomes).toEqual(Array.from({ length: 30 }, (_, n) => succeeded(n)));
  });

  it('replaces a thread whose event loop stays stuck outside any job, and runs the jobs waiting on it elsewhere', async () => {
    const { run, warm, restarts } = await setup();
    await warm('leaves-spin');
    // The job returns; the callback it leaves spins after it and the thread takes nothing more.
    const channel = new BroadcastChannel('drover-pool-test');
    const spinning = new Promise((resolve) => (channel.onmessage = resolve));
    try {
      expect(await run('leaves-spin', { spin: true, n: 1 }).outcome).toEqual(succeeded(1));
      await spinning;
    } finally {
      channel.close();
    }
    expect(await run('leaves-spin', { n: 2 }).outcome).toEqual(succeeded(2));
    expect(restarts).toEqual(['timeout']);
  });

  it('takes back jobs not yet started when shutdown aborts them', async () => {
    const { run, warm } = await setup();
    await warm('slow-sync');
    const jobs = [1, 2, 3].map((n) => run('slow-sync', { n }));
    for (const job of jobs) job.shutdown();
    const outcomes = await Promise.all(jobs.map((j) => j.outcome));
    expect(outcomes.every((o) => o.kind === 'aborted')).toBe(true);
  });
});
