/**
 * `ctx.step` in `runWorker` against a real node: steps run once across
 * retries, a sleep suspends the job and it comes back to the remote worker,
 * waits resolve with their event, limits and changed step sequences fail the
 * job, and plain jobs cost no extra request.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runWorker, StepSuspendedError, type Worker, type WorkerOptions } from '../../src/sdk/worker.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { keyWith, listen } from '../api/support.js';

let node: TestNode;
let base: string;
let workKey: string;
const workers: Worker[] = [];

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      { name: 'three', remote: true, retry: { maxAttempts: 3, backoff: { initialMs: 10, jitter: 'none' } } },
      { name: 'sleeper', remote: true },
      { name: 'alongside', remote: true },
      { name: 'waiter', remote: true },
      { name: 'approver', remote: true },
      { name: 'plain', remote: true },
      { name: 'big', remote: true, retry: { maxAttempts: 3, backoff: { initialMs: 10, jitter: 'none' } } },
      { name: 'changing', remote: true, retry: { maxAttempts: 3, backoff: { initialMs: 10, jitter: 'none' } } },
    ],
    rateLimit: { enabled: false },
    durable: { maxStepResultBytes: 1_000 },
  });
  base = await listen(node);
  workKey = await keyWith(node, ['work']);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop(1_000)));
});
afterAll(async () => node?.close());

/** A worker whose requests are counted by path. */
function start(handlers: WorkerOptions['handlers'], paths: string[] = [], errors: Error[] = []): Worker {
  const counting: typeof fetch = (input, init) => {
    paths.push(new URL(String(input instanceof Request ? input.url : input)).pathname);
    return fetch(input, init);
  };
  const worker = runWorker({ url: base, key: workKey, handlers, waitMs: 2_000, onError: (error) => errors.push(error), fetch: counting });
  workers.push(worker);
  return worker;
}

async function enqueue(handler: string, payload: unknown = {}): Promise<string> {
  const res = await node.request('POST', '/v1/jobs', { handler, payload });
  expect(res.status).toBe(202);
  return res.body.id;
}

const job = async (id: string) => (await node.request('GET', `/v1/jobs/${id}`)).body;
const settled = (id: string, state = 'succeeded') => waitFor(async () => (await job(id)).state === state, { timeoutMs: 15_000, message: `job ${id} ${state}` });

describe('runWorker ctx.step', () => {
  it("runs each of a 3-step job's steps once across a retry", async () => {
    const ran: string[] = [];
    start({
      three: async (ctx) => {
        const a = await ctx.step.run('one', () => (ran.push('one'), 1));
        const b = await ctx.step.run('two', async () => (ran.push('two'), a + 1));
        const c = await ctx.step.run('three', () => (ran.push('three'), { total: b + 1 }));
        if (ctx.job.attempt === 1) throw new Error('after the steps, before the result');
        return { c, key: ctx.step.key('three') };
      },
    });
    const id = await enqueue('three');
    await settled(id);
    expect(ran).toEqual(['one', 'two', 'three']);
    const done = await job(id);
    expect(done.result).toEqual({ c: { total: 3 }, key: `drover:${id}:three` });
    expect(done.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['failed', 'succeeded']);
  });

  it('suspends on a sleep; the job comes back to the remote worker and finishes', async () => {
    const ran: string[] = [];
    let unwound: unknown;
    start({
      sleeper: async (ctx) => {
        const before = await ctx.step.run('before', () => (ran.push('before'), 'b'));
        try {
          await ctx.step.sleep('nap', 300);
        } catch (error) {
          unwound = error;
          throw error;
        }
        const after = await ctx.step.run('after', () => (ran.push('after'), 'a'));
        return before + after;
      },
    });
    const id = await enqueue('sleeper');
    await waitFor(() => unwound !== undefined, { message: 'the sleep unwound the handler' });
    expect(unwound).toBeInstanceOf(StepSuspendedError);
    await settled(id);
    expect(ran).toEqual(['before', 'after']);
    const done = await job(id);
    expect(done.result).toBe('ba');
    expect(done.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['suspended', 'succeeded']);
  });

  it('a step running alongside the one that suspends is unwound too, and is no lost lease', async () => {
    const errors: Error[] = [];
    let sideRuns = 0;
    start(
      {
        alongside: async (ctx) => {
          const [, side] = await Promise.all([
            ctx.step.sleep('nap', 200),
            ctx.step.run('side', async () => {
              sideRuns++;
              await new Promise((resolve) => setTimeout(resolve, 50));
              return 'side';
            }),
          ]);
          return side;
        },
      },
      [],
      errors,
    );
    const id = await enqueue('alongside');
    await settled(id);
    expect((await job(id)).result).toBe('side');
    // The first run's side step lost its write to the suspension; the run after the sleep stores it.
    expect(sideRuns).toBe(2);
    expect(errors).toEqual([]);
  });

  it('waits for an event and resumes with it', async () => {
    const seen: unknown[] = [];
    start({
      waiter: async (ctx) => {
        const event = await ctx.step.waitForEvent<{ order: string }>('paid', { event: 'order.paid', match: { 'data.order': (ctx.job.payload as { order: string }).order }, timeoutMs: 60_000 });
        seen.push(event);
        return event?.data.order ?? null;
      },
    });
    const id = await enqueue('waiter', { order: 'o-7' });
    await waitFor(async () => (await job(id)).state === 'suspended', { message: 'the job waits' });
    expect((await node.request('POST', '/v1/events', { name: 'order.paid', data: { order: 'o-other' } })).status).toBeLessThan(300);
    expect((await node.request('POST', '/v1/events', { name: 'order.paid', data: { order: 'o-7' } })).status).toBeLessThan(300);
    await settled(id);
    expect((await job(id)).result).toBe('o-7');
    expect(seen).toEqual([expect.objectContaining({ name: 'order.paid', data: { order: 'o-7' } })]);
  });

  it('suspends on an interrupt that a person resumes over HTTP, with input checked against its schema', async () => {
    start({
      approver: async (ctx) => {
        const decision = await ctx.step.interrupt<{ approve: boolean }>('approval', {
          prompt: 'Refund 20?',
          schema: { type: 'object', properties: { approve: { type: 'boolean' } }, required: ['approve'] },
          timeoutMs: 60_000,
        });
        return { approved: decision?.approve ?? null };
      },
    });
    const id = await enqueue('approver');
    let interruptId: string | undefined;
    await waitFor(async () => (interruptId = (await job(id)).wait?.interruptId) !== undefined, { message: 'the interrupt is pending' });
    expect((await node.request('POST', `/v1/interrupts/${interruptId}/resume`, { input: { approve: 'yes' } })).status).toBe(422);
    expect((await node.request('POST', `/v1/interrupts/${interruptId}/resume`, { input: { approve: true } })).status).toBe(200);
    await settled(id);
    expect((await job(id)).result).toEqual({ approved: true });
  });

  it('costs a plain job no extra request', async () => {
    const paths: string[] = [];
    start({ plain: () => 'done' }, paths);
    const id = await enqueue('plain');
    await settled(id);
    expect(paths.filter((p) => p !== '/v1/workers/lease')).toEqual(['/v1/workers/complete']);
  });

  it('fails the job without a retry past a durable limit (the node refuses with 422)', async () => {
    let runs = 0;
    start({
      big: async (ctx) => {
        runs++;
        await ctx.step.run('huge', () => 'x'.repeat(2_000));
        return 'unreachable';
      },
    });
    const id = await enqueue('big');
    await settled(id, 'dead');
    expect(runs).toBe(1);
    expect(await job(id)).toMatchObject({ deadReason: 'non_retryable', lastError: expect.stringContaining('maxStepResultBytes') });
  });

  it('fails the job without a retry when its steps changed between runs', async () => {
    let runs = 0;
    start({
      changing: async (ctx) => {
        runs++;
        await ctx.step.run(ctx.job.attempt === 1 ? 'first-name' : 'renamed', () => 1);
        if (ctx.job.attempt === 1) throw new Error('retry me');
        return 'unreachable';
      },
    });
    const id = await enqueue('changing');
    await settled(id, 'dead');
    expect(runs).toBe(2);
    expect(await job(id)).toMatchObject({ deadReason: 'non_retryable', lastError: expect.stringContaining('steps changed between runs') });
  });
});
