/**
 * `drover/worker` against a real node: concurrency, outcomes, retries,
 * heartbeats, lost leases and graceful shutdown.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLostError, NonRetryableError, runWorker, type Worker, type WorkerOptions } from '../../src/sdk/worker.js';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { keyWith, listen } from '../api/support.js';

let node: TestNode;
let base: string;
let workKey: string;
const workers: Worker[] = [];

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      { name: 'gated', remote: true },
      { name: 'flaky', remote: true, retry: { maxAttempts: 3, backoff: { initialMs: 10, jitter: 'none' } } },
      { name: 'strict', remote: true },
      { name: 'long', remote: true },
    ],
    rateLimit: { enabled: false },
  });
  base = await listen(node);
  workKey = await keyWith(node, ['work']);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop(1_000)));
});
afterAll(async () => node?.close());

function start(handlers: WorkerOptions['handlers'], extra: Partial<WorkerOptions> = {}): Worker {
  const worker = runWorker({ url: base, key: workKey, handlers, waitMs: 5_000, onError: () => undefined, ...extra });
  workers.push(worker);
  return worker;
}

async function enqueue(handler: string, payload: unknown = {}): Promise<string> {
  const res = await node.request('POST', '/v1/jobs', { handler, payload });
  expect(res.status).toBe(202);
  return res.body.id;
}

const job = async (id: string) => (await node.request('GET', `/v1/jobs/${id}`)).body;

describe('runWorker', () => {
  it('runs up to `concurrency` jobs at once and records their results', async () => {
    const gates: Array<() => void> = [];
    let now = 0; // running at this moment
    let peak = 0;
    start(
      {
        gated: async (ctx) => {
          peak = Math.max(peak, ++now);
          await new Promise<void>((resolve) => gates.push(resolve));
          now--;
          return { doubled: (ctx.job.payload as { n: number }).n * 2 };
        },
      },
      { concurrency: 3 },
    );
    const ids = await Promise.all([1, 2, 3, 4, 5].map((n) => enqueue('gated', { n })));
    await waitFor(() => gates.length === 3, { message: 'three jobs running' });
    expect(peak).toBe(3);
    const opener = setInterval(() => gates.shift()?.(), 5);
    try {
      await waitFor(async () => (await Promise.all(ids.map(job))).every((j) => j.state === 'succeeded'), { message: 'all five succeeded' });
    } finally {
      clearInterval(opener);
    }
    expect(peak).toBe(3);
    expect((await job(ids[1]!)).result).toEqual({ doubled: 4 });
    expect((await job(ids[0]!)).workerId).toMatch(/^remote:/);
  });

  it('fails an attempt that throws (retried by the server policy) and kills one that throws NonRetryableError', async () => {
    const attempts: number[] = [];
    start({
      flaky: async (ctx) => {
        attempts.push(ctx.job.attempt);
        if (ctx.job.attempt < 2) throw new Error('transient');
        return 'ok';
      },
      strict: async () => {
        throw new NonRetryableError('payload is missing "to"');
      },
    });
    const flaky = await enqueue('flaky');
    const strict = await enqueue('strict');
    await waitFor(async () => (await job(flaky)).state === 'succeeded', { message: 'flaky succeeded on retry' });
    expect(attempts).toEqual([1, 2]);
    const f = await job(flaky);
    expect(f.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['failed', 'succeeded']);
    expect(f.attempts[0].error).toContain('transient');
    await waitFor(async () => (await job(strict)).state === 'dead');
    expect(await job(strict)).toMatchObject({ deadReason: 'non_retryable', lastError: expect.stringContaining('payload is missing') });
  });

  it('heartbeats keep a job alive past its first lease', async () => {
    let release: (() => void) | undefined;
    start({ long: () => new Promise<string>((resolve) => (release = () => resolve('finally'))) }, { leaseMs: 1_000, heartbeatMs: 150 });
    const id = await enqueue('long');
    await waitFor(() => release !== undefined, { message: 'the long job started' });
    const firstExpiry = Date.parse((await job(id)).leaseExpiresAt);
    // Once the first lease would have run out, the reaper must find nothing to reap.
    await waitFor(async () => Date.now() > firstExpiry + 300 && Date.parse((await job(id)).leaseExpiresAt) > Date.now(), { timeoutMs: 5_000, intervalMs: 50 });
    await node.runtime.runTask('reaper');
    expect((await job(id)).state).toBe('running');
    release!();
    await waitFor(async () => (await job(id)).state === 'succeeded');
    expect((await job(id)).attempts).toHaveLength(1);
  });

  it('aborts the job and drops its outcome when the lease is lost', async () => {
    const errors: Error[] = [];
    let aborted: unknown;
    let started = false;
    start(
      {
        long: (ctx) =>
          new Promise((_, reject) => {
            started = true;
            ctx.signal.addEventListener('abort', () => {
              aborted = ctx.signal.reason;
              reject(ctx.signal.reason);
            });
          }),
      },
      { leaseMs: 1_000, heartbeatMs: 100, onError: (e) => errors.push(e) },
    );
    const id = await enqueue('long');
    await waitFor(() => started);
    expect((await node.request('POST', `/v1/jobs/${id}/cancel`)).status).toBe(200);
    await waitFor(() => aborted !== undefined, { message: 'the signal aborted' });
    expect(aborted).toBeInstanceOf(LeaseLostError);
    expect(errors.some((e) => e instanceof LeaseLostError)).toBe(true);
    expect((await job(id)).state).toBe('cancelled');
  });

  it('stops gracefully: running jobs finish within the grace period', async () => {
    let release: (() => void) | undefined;
    const worker = start({ gated: () => new Promise<string>((resolve) => (release = () => resolve('done'))) });
    const id = await enqueue('gated');
    await waitFor(() => release !== undefined);
    const stopping = worker.stop(10_000);
    release!();
    await stopping;
    expect(worker.running).toBe(0);
    expect((await job(id)).state).toBe('succeeded');
    // Stopped means stopped: new work stays queued.
    const later = await enqueue('gated');
    expect((await job(later)).state).toBe('queued');
    await node.request('POST', `/v1/jobs/${later}/cancel`);
  });

  it('releases jobs still running when the grace period ends, without spending the attempt', async () => {
    let started = false;
    const worker = start({
      long: (ctx) =>
        new Promise((_, reject) => {
          started = true;
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        }),
    });
    const id = await enqueue('long');
    await waitFor(() => started);
    await worker.stop(100);
    const released = await job(id);
    expect(released.state).toBe('queued');
    expect(released.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['released']);
    await node.request('POST', `/v1/jobs/${id}/cancel`);
  });

  it('releases the lease of a handler that ignores its signal, and drops what it returns later', async () => {
    let finish: (() => void) | undefined;
    const worker = start({ long: () => new Promise<string>((resolve) => (finish = () => resolve('too late'))) });
    const id = await enqueue('long');
    await waitFor(() => finish !== undefined);
    await worker.stop(50);
    expect((await job(id)).state).toBe('queued');
    finish!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await job(id)).toMatchObject({ state: 'queued', result: null });
    await node.request('POST', `/v1/jobs/${id}/cancel`);
  });

  it('keeps trying when the node is unreachable, and still stops on request', async () => {
    const errors: Error[] = [];
    const worker = runWorker({ url: 'http://127.0.0.1:9', key: ADMIN_KEY, handlers: { gated: async () => 1 }, onError: (e) => errors.push(e) });
    await waitFor(() => errors.length >= 2, { message: 'two failed lease attempts' });
    expect(errors[0]!.name).toBe('DroverNetworkError');
    await worker.stop(100);
    await worker.done;
  });
});
