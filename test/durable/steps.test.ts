/**
 * Durable steps through a real node (in this process, either engine):
 * memoized `run` steps across retries, the clear errors for a duplicate name
 * and a changed step sequence, and the limits checked before anything is
 * written.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JobContext } from '../../src/core/handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { enqueue, jobIn, record } from './helpers.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

const quickRetry = { maxAttempts: 4, backoff: { initialMs: 10, factor: 1, jitter: 'none' as const } };

describe('ctx.step.run', () => {
  it('runs each of three steps once and returns their results, stored in order', async () => {
    const calls: string[] = [];
    node = await startTestNode({
      handlers: [{
        name: 'three',
        async run(ctx: JobContext<{ n: number }>) {
          const a = await ctx.step.run('a', () => { calls.push('a'); return ctx.job.payload.n + 1; });
          const b = await ctx.step.run('b', async () => { calls.push('b'); return { twice: a * 2 }; });
          const c = await ctx.step.run('c', () => { calls.push('c'); });
          return { a, b, c, key: ctx.step.key('charge') };
        },
      }],
    });
    const finished = record(node, 'step:finished');
    const id = await enqueue(node, 'three', { n: 1 });
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toEqual({ a: 2, b: { twice: 4 }, c: null, key: `drover:${id}:charge` });
    expect(calls).toEqual(['a', 'b', 'c']);
    const steps = await node.store.getSteps(id);
    expect(steps.map((s) => [s.name, s.seq, s.kind, s.attempt, s.result])).toEqual([
      ['a', 0, 'run', 1, 2],
      ['b', 1, 'run', 1, { twice: 4 }],
      ['c', 2, 'run', 1, null],
    ]);
    expect(finished.map((f) => [f.step.name, f.outcome])).toEqual([['a', 'succeeded'], ['b', 'succeeded'], ['c', 'succeeded']]);
  });

  it('never runs a finished step again when a later one fails and the job is retried', async () => {
    const calls: string[] = [];
    node = await startTestNode({
      handlers: [{
        name: 'flaky',
        retry: quickRetry,
        async run(ctx) {
          const a = await ctx.step.run('a', () => { calls.push(`a@${ctx.job.attempt}`); return 'A'; });
          const b = await ctx.step.run('b', () => {
            calls.push(`b@${ctx.job.attempt}`);
            if (ctx.job.attempt < 3) throw new Error(`b fails on attempt ${ctx.job.attempt}`);
            return 'B';
          });
          return a + b;
        },
      }],
    });
    const finished = record(node, 'step:finished');
    const id = await enqueue(node, 'flaky');
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toBe('AB');
    expect(job.attempts).toBe(3);
    expect(calls).toEqual(['a@1', 'b@1', 'b@2', 'b@3']);
    expect(finished.map((f) => `${f.step.name}:${f.outcome}`)).toEqual([
      'a:succeeded', 'b:failed', 'a:memoized', 'b:failed', 'a:memoized', 'b:succeeded',
    ]);
  });

  it('returns the stored JSON on the first run too (a Date comes back as its string)', async () => {
    node = await startTestNode({
      handlers: [{ name: 'date', async run(ctx) { const at = await ctx.step.run('at', () => new Date(0)); return { type: typeof at, at }; } }],
    });
    const job = await jobIn(node, await enqueue(node, 'date'), 'succeeded');
    expect(job.result).toEqual({ type: 'string', at: '1970-01-01T00:00:00.000Z' });
  });

  it('fails the job at once, with a clear error, when a step name is used twice in one run', async () => {
    node = await startTestNode({
      handlers: [{
        name: 'dupe',
        retry: quickRetry,
        async run(ctx) {
          for (let i = 0; i < 2; i++) await ctx.step.run('item', () => i);
        },
      }],
    });
    const job = await jobIn(node, await enqueue(node, 'dupe'), 'dead');
    expect(job.deadReason).toBe('non_retryable');
    expect(job.attempts).toBe(1);
    expect(job.lastError).toMatch(/NonRetryableError: step "item" is asked for twice in one run; step names are unique within a job \(in a loop, add the index/);
  });

  it('fails the job with both names when the step sequence changed between runs, and says so as an event', async () => {
    let version = 1;
    const calls: string[] = [];
    node = await startTestNode({
      handlers: [{
        name: 'evolving',
        retry: quickRetry,
        async run(ctx) {
          await ctx.step.run('load', () => { calls.push('load'); return 1; });
          if (version === 1) {
            await ctx.step.run('charge', () => { calls.push('charge'); return 2; });
            version = 2; // the code is "redeployed" before the retry
            throw new Error('crash after charge');
          }
          await ctx.step.run('notify', () => { calls.push('notify'); return 3; });
        },
      }],
    });
    const changed = record(node, 'step:sequence_changed');
    const id = await enqueue(node, 'evolving');
    const job = await jobIn(node, id, 'dead');
    expect(job.deadReason).toBe('non_retryable');
    expect(job.lastError).toMatch(/the job's steps changed between runs: step 2 of this job is stored as "charge" but the handler now asks for "notify" there/);
    expect(calls).toEqual(['load', 'charge']);
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({ expected: 'charge', asked: 'notify', seq: 1, job: { id } });
  });

  it('refuses a result past durable.maxStepResultBytes and steps past maxStepsPerJob before writing', async () => {
    node = await startTestNode({
      durable: { maxStepResultBytes: 100, maxStepsPerJob: 2 },
      handlers: [
        { name: 'big', async run(ctx) { await ctx.step.run('blob', () => 'x'.repeat(200)); } },
        { name: 'many', async run(ctx) { for (let i = 0; i < 3; i++) await ctx.step.run(`s:${i}`, () => i); } },
      ],
    });
    const big = await enqueue(node, 'big');
    const many = await enqueue(node, 'many');
    const bigJob = await jobIn(node, big, 'dead');
    expect(bigJob.lastError).toMatch(/step "blob" returned 202 bytes of JSON, past durable\.maxStepResultBytes \(100\)/);
    expect(await node.store.getSteps(big)).toEqual([]);
    const manyJob = await jobIn(node, many, 'dead');
    expect(manyJob.lastError).toMatch(/step "s:2" would be step 3 of this job, past durable\.maxStepsPerJob \(2\)/);
    expect((await node.store.getSteps(many)).map((s) => s.name)).toEqual(['s:0', 's:1']);
  });

  it('fails the job, naming the step, when a sleep or wait is given options it cannot use', async () => {
    const cases: Record<string, (ctx: JobContext) => Promise<unknown>> = {
      'negative-sleep': (ctx) => ctx.step.sleep('nap', -5),
      'bad-until': (ctx) => ctx.step.sleep('nap', { until: Number.NaN }),
      'object-match': (ctx) => ctx.step.waitForEvent('paid', { event: 'paid', match: { 'data.order': {} as unknown as string } }),
      'no-event': (ctx) => ctx.step.waitForEvent('paid', { event: [] }),
      'no-prompt': (ctx) => ctx.step.interrupt('ask', { prompt: '' }),
      'bad-schema': (ctx) => ctx.step.interrupt('ask', { prompt: 'ok?', schema: { type: 'nonsense' } }),
    };
    node = await startTestNode({ handlers: Object.entries(cases).map(([name, run]) => ({ name, run })) });
    const expected: Record<string, RegExp> = {
      'negative-sleep': /step "nap": sleep expects a duration in ms \(0 or more\) or \{ until \}, got -5/,
      'bad-until': /step "nap": sleep expects \{ until \} as epoch milliseconds or a Date/,
      'object-match': /step "paid": waitForEvent expects `match` as/,
      'no-event': /step "paid": waitForEvent expects `event`/,
      'no-prompt': /step "ask": interrupt expects a `prompt`/,
      'bad-schema': /step "ask": interrupt's `schema` is not a valid JSON Schema/,
    };
    for (const name of Object.keys(cases)) {
      const job = await jobIn(node, await enqueue(node, name), 'dead');
      expect(job.deadReason, name).toBe('non_retryable');
      expect(job.lastError, name).toMatch(expected[name]!);
    }
  });

  it('costs a plain job nothing: no step read for a handler that never touches ctx.step', async () => {
    node = await startTestNode({ handlers: [{ name: 'plain', run: () => 'ok' }] });
    let reads = 0;
    const getSteps = node.store.getSteps.bind(node.store);
    node.store.getSteps = (id) => {
      reads++;
      return getSteps(id);
    };
    await jobIn(node, await enqueue(node, 'plain'), 'succeeded');
    expect(reads).toBe(0);
  });

  it.each(['step', 'suspend'] as const)('stops an attempt whose lease a %s write finds gone, writing nothing more', async (op) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let aborted = false;
    let after = false;
    node = await startTestNode({
      handlers: [{
        name: 'lost',
        async run(ctx) {
          ctx.signal.addEventListener('abort', () => (aborted = true));
          if (op === 'step') await ctx.step.run('slow', async () => { await gate; return 1; });
          else {
            await gate;
            await ctx.step.sleep('nap', 60_000);
          }
          after = true;
        },
      }],
    });
    const stale = record(node, 'job:stale');
    const id = await enqueue(node, 'lost');
    await jobIn(node, id, 'running');
    // An operator cancels the running job: its lease is revoked under the handler.
    await node.store.cancel(id);
    release();
    await waitFor(() => stale.length > 0, { message: 'job:stale' });
    await node.runtime.dispatcher.whenIdle();
    expect(stale.map((s) => s.op)).toEqual([op]);
    expect(aborted).toBe(true);
    expect(after).toBe(false);
    expect((await node.store.getJob(id))?.state).toBe('cancelled');
    expect(await node.store.getSteps(id)).toEqual([]);
    expect(await node.store.pendingWait(id)).toBeNull();
  });
});
