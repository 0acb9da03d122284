/**
 * `isolation: 'thread'`: an out-of-memory handler and an infinite loop fail
 * only their own jobs, with a reason naming the limit; the node and the other
 * handlers (threaded and inline) keep running, and crashed threads are replaced
 * (counted in `drover_thread_restarts_total`). A job whose attempts keep
 * killing their thread is poisoned after `poisonAfter` kills, attempts left or not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigModule } from '../../src/cli/load-config.js';
import { startNode, type DroverNode } from '../../src/node/start-node.js';
import { resolveConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/obs/logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { parseExposition } from '../obs/exposition.js';

const KEY = 'drv_test_admin_key_0123456789abcdef';
const configPath = fileURLToPath(new URL('./fixtures/isolated.config.mjs', import.meta.url));
let node: DroverNode | undefined;
let dir: string | undefined;
afterEach(async () => {
  await node?.shutdown(1_000);
  node = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<DroverNode> {
  dir = mkdtempSync(join(tmpdir(), 'drover-threads-'));
  const raw = (await loadConfigModule(configPath)) as Record<string, unknown>;
  const config = resolveConfig({ ...raw, databaseUrl: join(dir, 'drover.db') }, {});
  return startNode({ config, configPath, bootstrapAdminKey: KEY, listen: false, print: () => undefined, logger: createLogger({ level: 'silent' }) });
}

async function call(n: DroverNode, method: 'GET' | 'POST', url: string, body?: unknown) {
  const res = await n.app.inject({ method, url, headers: { authorization: `Bearer ${KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { payload: JSON.stringify(body) } : {}) });
  return res.json() as Record<string, any>;
}
const enqueue = async (n: DroverNode, handler: string, payload: unknown = {}) => (await call(n, 'POST', '/v1/jobs', { handler, payload })).id as string;
const finished = (n: DroverNode, id: string) => waitFor(async () => {
  const job = await call(n, 'GET', `/v1/jobs/${id}`);
  return job.state === 'succeeded' || job.state === 'dead' ? job : null;
}, { timeoutMs: 20_000, message: `job ${id} finished` });

/** Jobs of the one-thread `mixed` handler in one request (so one lease hands them to its thread together); their ids. */
const enqueueMixed = async (n: DroverNode, payloads: unknown[]) =>
  ((await call(n, 'POST', '/v1/jobs', { jobs: payloads.map((payload) => ({ handler: 'mixed', payload })) })).jobs as Array<{ id: string }>).map((j) => j.id);
/** Quick jobs first (their average run time must forget the thread's start-up), so the dispatcher counts `mixed` as quick and queues more jobs on its one thread. */
const warmMixed = async (n: DroverNode) => {
  for (const id of await enqueueMixed(n, Array.from({ length: 60 }, (_, i) => ({ n: i })))) expect((await finished(n, id)).state).toBe('succeeded');
};

const restarts = async (n: DroverNode, handler: string, reason: string) =>
  parseExposition(await n.metrics.scrape()).value('drover_thread_restarts_total', { handler, reason });

describe('thread isolation', () => {
  it('runs a handler in a thread and returns its result', async () => {
    node = await start();
    const job = await finished(node, await enqueue(node, 'echo', { n: 1 }));
    expect(job.state).toBe('succeeded');
    expect(job.result).toEqual({ echoed: { n: 1 }, thread: true });
  });

  it('fails only the out-of-memory job, with a clear reason; other handlers keep running and the thread is replaced', async () => {
    node = await start();
    const hog = await enqueue(node, 'hog');
    const others = await Promise.all([enqueue(node, 'echo', { a: 1 }), enqueue(node, 'plain', { b: 2 })]);
    const dead = await finished(node, hog);
    expect(dead.state).toBe('dead');
    expect(dead.attempts.at(-1).error).toMatch(/MemoryLimitError: handler exceeded its memory limit of 32 MiB/);
    for (const id of others) expect((await finished(node, id)).state).toBe('succeeded');
    // The replacement thread runs the next job of the same handler (and fails it the same way).
    const again = await finished(node, await enqueue(node, 'hog'));
    expect(again.attempts.at(-1).error).toMatch(/memory limit/);
    expect(node.runtime.state).toBe('running');
    expect(await restarts(node, 'hog', 'memory')).toBe(2);
    expect(await restarts(node, 'hog', 'crash')).toBe(0);
    expect(await restarts(node, 'echo', 'memory')).toBe(0);
  }, 60_000);

  it('poisons a job whose attempts keep running out of memory after poisonAfter kills, not maxAttempts', async () => {
    node = await start();
    const poison = await enqueue(node, 'poison-hog');
    const dead = await finished(node, poison);
    // poisonAfter 2, maxAttempts 5: the second kill ends it.
    expect(dead).toMatchObject({ state: 'dead', deadReason: 'poison' });
    expect(dead.attempts).toHaveLength(2);
    expect(dead.crashCount).toBe(2);
    for (const attempt of dead.attempts) expect(attempt).toMatchObject({ outcome: 'crashed', error: expect.stringMatching(/MemoryLimitError/) });
    // The node and the other handlers keep running, also the poisoned handler's next job.
    const others = await Promise.all([enqueue(node, 'echo', { d: 4 }), enqueue(node, 'plain', { e: 5 })]);
    for (const id of others) expect((await finished(node, id)).state).toBe('succeeded');
    expect(node.runtime.state).toBe('running');
    const m = parseExposition(await node.metrics.scrape());
    expect(m.value('drover_thread_restarts_total', { handler: 'poison-hog', reason: 'memory' })).toBe(2);
    expect(m.value('drover_jobs_completed_total', { handler: 'poison-hog', outcome: 'retried' })).toBe(1);
    expect(m.value('drover_jobs_completed_total', { handler: 'poison-hog', outcome: 'dead' })).toBe(1);
  }, 60_000);

  it('poisons a job whose thread dies under every attempt', async () => {
    node = await start();
    const dead = await finished(node, await enqueue(node, 'exiter'));
    expect(dead).toMatchObject({ state: 'dead', deadReason: 'poison' });
    expect(dead.attempts).toHaveLength(2);
    expect(dead.attempts.at(-1)).toMatchObject({ outcome: 'crashed', error: expect.stringMatching(/ThreadCrashError: handler thread crashed: exited with code 3/) });
    expect(await restarts(node, 'exiter', 'crash')).toBe(2);
  }, 30_000);

  it('moves a job queued behind an out-of-memory job on the same thread to its replacement, unspent', async () => {
    node = await start();
    await warmMixed(node);
    const ids = await enqueueMixed(node, [{ hog: true }, { n: 1 }, { n: 2 }, { n: 3 }]);
    const [hog, ...rest] = ids;
    expect(await finished(node, hog!)).toMatchObject({ state: 'dead' });
    for (const id of rest) {
      const job = await finished(node, id);
      expect(job.state).toBe('succeeded');
      expect(job.attempts).toHaveLength(1);
    }
    expect(await restarts(node, 'mixed', 'memory')).toBe(1);
  }, 30_000);

  it('runs again a job that finished on a thread just before the job after it ran out of memory', async () => {
    node = await start();
    await warmMixed(node);
    // One lease, one message to the one thread: n 1 finishes, its result waits for the next
    // job (quick jobs' results travel together), and the next job takes the thread down.
    // (Unless the thread was preempted between the two for longer than the hold: then n 1
    // was answered first. Either way it succeeds once, and a lost result is accounted for.)
    const ids = await enqueueMixed(node, [{ n: 1 }, { hog: true }]);
    const [before, hog] = ids;
    expect(await finished(node, hog!)).toMatchObject({ state: 'dead' });
    const job = await finished(node, before!);
    expect(job).toMatchObject({ state: 'succeeded', result: { n: 1 } });
    const outcomes = job.attempts.map((a: { outcome: string }) => a.outcome) as string[];
    expect(outcomes.at(-1)).toBe('succeeded');
    expect(outcomes.slice(0, -1).every((o) => o === 'released')).toBe(true);
    expect(outcomes.length).toBeLessThanOrEqual(2);
    const m = parseExposition(await node.metrics.scrape());
    expect(m.value('drover_jobs_released_total', { handler: 'mixed', reason: 'thread_lost' })).toBe(outcomes.length - 1);
  }, 30_000);

  it('terminates an infinite loop at the hard timeout and keeps serving', async () => {
    node = await start();
    const spin = await enqueue(node, 'spin');
    const dead = await finished(node, spin);
    expect(dead.state).toBe('dead');
    expect(dead.attempts.at(-1)).toMatchObject({ outcome: 'timed_out' });
    expect(dead.attempts.at(-1).error).toMatch(/within its timeout of 300 ms/);
    const ok = await finished(node, await enqueue(node, 'echo', { c: 3 }));
    expect(ok.state).toBe('succeeded');
    expect((await call(node, 'GET', '/v1/status')).state).toBe('running');
    // A timeout is not a kill: the job died of exhaustion (maxAttempts 1), not poison.
    expect(dead.deadReason).toBe('exhausted');
    expect(dead.crashCount).toBe(0);
    expect(await restarts(node, 'spin', 'timeout')).toBe(1);
  }, 30_000);
});
