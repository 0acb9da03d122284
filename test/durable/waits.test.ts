/**
 * Suspending steps through a real node (in this process, either engine):
 * a sleep leaves the worker (state `suspended`, no lease, no slot, no
 * concurrency key) and resumes after its time; `waitForEvent` never misses
 * its event, whether it came before the wait was asked for (the look-back),
 * or right after the job suspended, and gives null at its timeout; an
 * interrupt suspends until it is resumed with input or times out.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { enqueue, jobIn, record } from './helpers.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

describe('ctx.step.sleep', () => {
  it('suspends the job holding no lease, slot or concurrency key, and resumes it after the time', async () => {
    const calls: string[] = [];
    let wokeAt = 0;
    node = await startTestNode({
      handlers: [{
        name: 'nap',
        concurrency: 1,
        concurrencyKey: 'payload.k',
        async run(ctx) {
          const p = ctx.job.payload as { k: string; label: string; ms: number };
          await ctx.step.run('before', () => calls.push(`before:${p.label}`));
          await ctx.step.sleep('nap', p.ms);
          if (p.ms > 0) wokeAt = Date.now();
          await ctx.step.run('after', () => calls.push(`after:${p.label}`));
          return p.label;
        },
      }],
    });
    const suspended = record(node, 'job:suspended');
    const woken = record(node, 'job:woken');
    const startedAt = Date.now();
    const sleeper = await enqueue(node, 'nap', { k: 'same', label: 'sleeper', ms: 1500 });
    const job = await jobIn(node, sleeper, 'suspended');
    expect(job.leaseToken).toBeNull();
    const wait = await node.store.pendingWait(sleeper);
    expect(wait).toMatchObject({ kind: 'sleep', step: 'nap', state: 'pending' });
    expect(wait!.wakeAt! - startedAt).toBeGreaterThanOrEqual(1500);
    expect(suspended).toHaveLength(1);
    expect(suspended[0]).toMatchObject({ job: { id: sleeper }, wait: { kind: 'sleep' } });

    // Same handler (concurrency 1) and same concurrency key: it runs while the sleeper sleeps.
    const other = await enqueue(node, 'nap', { k: 'same', label: 'other', ms: 0 });
    await jobIn(node, other, 'succeeded');
    expect((await node.store.getJob(sleeper))?.state).toBe('suspended');

    const done = await jobIn(node, sleeper, 'succeeded');
    expect(done.result).toBe('sleeper');
    expect(wokeAt - startedAt).toBeGreaterThanOrEqual(1500);
    expect(calls.filter((c) => c.endsWith(':sleeper'))).toEqual(['before:sleeper', 'after:sleeper']);
    expect(woken.map((w) => [w.job.id, w.cause])).toEqual([[sleeper, 'sleep']]);
    // One suspended attempt, one succeeded: the sleep spent no retry.
    const attempts = (await node.store.getAttempts(sleeper)).map((a) => a.outcome);
    expect(attempts).toEqual(['suspended', 'succeeded']);
  });

  it('does not suspend for a sleep already over (until in the past)', async () => {
    node = await startTestNode({
      handlers: [{ name: 'past', async run(ctx) { await ctx.step.sleep('nap', { until: new Date(Date.now() - 1000) }); return 'on'; } }],
    });
    const id = await enqueue(node, 'past');
    await jobIn(node, id, 'succeeded');
    expect((await node.store.getAttempts(id)).map((a) => a.outcome)).toEqual(['succeeded']);
  });
});

describe('ctx.step.waitForEvent', () => {
  function waiter(timeoutMs?: number) {
    return {
      name: 'await-payment',
      async run(ctx: any) {
        const order = await ctx.step.run('create-order', async () => {
          const id = `o-${ctx.job.payload.n}`;
          // The payment provider answers at once: the event arrives before the wait is asked for.
          if (ctx.job.payload.early) await node!.runtime.ingestEvents([{ name: 'payment.settled', data: { orderId: id, amount: 5 } }]);
          return id;
        });
        const paid = await ctx.step.waitForEvent('paid', { event: 'payment.settled', match: { 'data.orderId': order }, ...(timeoutMs ? { timeoutMs } : {}) });
        return { order, paid };
      },
    };
  }

  it('finds an event sent before the wait was asked for (look-back), without suspending', async () => {
    node = await startTestNode({ handlers: [waiter()] });
    const id = await enqueue(node, 'await-payment', { n: 1, early: true });
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toMatchObject({ order: 'o-1', paid: { name: 'payment.settled', data: { orderId: 'o-1', amount: 5 } } });
    expect((await node.store.getAttempts(id)).map((a) => a.outcome)).toEqual(['succeeded']);
  });

  it('resumes with an event sent just after the job suspended, ignoring events that do not match', async () => {
    node = await startTestNode({ handlers: [waiter()] });
    const woken = record(node, 'job:woken');
    const id = await enqueue(node, 'await-payment', { n: 2 });
    await jobIn(node, id, 'suspended');
    await node.runtime.ingestEvents([{ name: 'payment.settled', data: { orderId: 'o-other' } }]);
    expect((await node.store.getJob(id))?.state).toBe('suspended');
    const [accepted] = await node.runtime.ingestEvents([{ name: 'payment.settled', data: { orderId: 'o-2', amount: 7 } }]);
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toMatchObject({ paid: { id: accepted!.event.id, data: { orderId: 'o-2', amount: 7 } } });
    expect(woken).toHaveLength(1);
    expect(woken[0]).toMatchObject({ cause: 'event', job: { id } });
  });

  it('never misses an event accepted between the step asking for the wait and the wait being recorded', async () => {
    node = await startTestNode({ handlers: [waiter()] });
    const suspend = node.store.suspend.bind(node.store);
    // The event lands in the instant before the suspend's transaction: its look-back must find it.
    node.store.suspend = async (jobId, token, request) => {
      await node!.runtime.ingestEvents([{ name: 'payment.settled', data: { orderId: 'o-4', amount: 1 } }]);
      return suspend(jobId, token, request);
    };
    const id = await enqueue(node, 'await-payment', { n: 4 });
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toMatchObject({ paid: { data: { orderId: 'o-4' } } });
    expect((await node.store.getAttempts(id)).map((a) => a.outcome)).toEqual(['succeeded']);
  });

  it('never misses an event racing the suspend, whichever commits first', async () => {
    node = await startTestNode({ handlers: [{ ...waiter(), concurrency: 20 }] });
    const suspend = node.store.suspend.bind(node.store);
    const sent: Array<Promise<unknown>> = [];
    node.store.suspend = (jobId, token, request) => {
      const order = (request.match as Record<string, string>)['data.orderId'];
      // Sent together with the suspend, not awaited: the store orders the two.
      sent.push(node!.runtime.ingestEvents([{ name: 'payment.settled', data: { orderId: order } }]));
      return suspend(jobId, token, request);
    };
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => enqueue(node!, 'await-payment', { n: 100 + i })));
    for (const id of ids) await jobIn(node, id, 'succeeded', 30_000);
    await Promise.all(sent);
  });

  it('gives null at its timeout', async () => {
    node = await startTestNode({ handlers: [waiter(400)] });
    const woken = record(node, 'job:woken');
    const id = await enqueue(node, 'await-payment', { n: 3 });
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toEqual({ order: 'o-3', paid: null });
    const steps = await node.store.getSteps(id);
    expect(steps.find((s) => s.name === 'paid')).toMatchObject({ kind: 'event', timedOut: true, result: null });
    expect(woken.map((w) => w.cause)).toEqual(['timeout']);
  });
});

describe('ctx.step.interrupt', () => {
  const approval = (timeoutMs?: number) => ({
    name: 'approve',
    async run(ctx: any) {
      const decision = await ctx.step.interrupt('manager', {
        prompt: `Refund ${ctx.job.payload.amount}?`,
        schema: { type: 'object', properties: { approve: { type: 'boolean' } }, required: ['approve'] },
        ...(timeoutMs ? { timeoutMs } : {}),
      });
      return { decision };
    },
  });

  it('suspends on a pending interrupt and resumes with the input it is given', async () => {
    node = await startTestNode({ handlers: [approval()] });
    const id = await enqueue(node, 'approve', { amount: 12 });
    await jobIn(node, id, 'suspended');
    const wait = await node.store.pendingWait(id);
    expect(wait).toMatchObject({ kind: 'interrupt', step: 'manager', prompt: 'Refund 12?', wakeAt: null, state: 'pending' });
    // The HTTP resume is runtime/job-control's; the store's compare-and-set is what it calls.
    const resumed = await node.store.resumeWait(wait!.id, { approve: true }, 'test');
    expect(resumed.ok).toBe(true);
    node.runtime.dispatcher.wake();
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toEqual({ decision: { approve: true } });
    expect((await node.store.resumeWait(wait!.id, { approve: false }, 'test')).ok).toBe(false);
  });

  it('gives null at its timeout', async () => {
    node = await startTestNode({ handlers: [approval(300)] });
    const id = await enqueue(node, 'approve', { amount: 1 });
    await waitFor(async () => (await node!.store.getAttempts(id)).length > 0);
    const job = await jobIn(node, id, 'succeeded');
    expect(job.result).toEqual({ decision: null });
  });

  it('lets exactly one of a resume and the timeout racing it wake the job, and the result says which', async () => {
    node = await startTestNode({ handlers: [{ ...approval(400), concurrency: 10 }] });
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => enqueue(node!, 'approve', { amount: i })));
    const waits = await Promise.all(ids.map(async (id) => {
      await jobIn(node!, id, 'suspended');
      return (await node!.store.pendingWait(id))!;
    }));
    // At each wait's timeout: a person's resume, and the staging pass that times it out, at once.
    const resumed = await Promise.all(waits.map(async (wait) => {
      await new Promise((r) => setTimeout(r, Math.max(0, wait.wakeAt! - Date.now())));
      const [resume] = await Promise.all([node!.store.resumeWait(wait.id, { approve: true }, 'test'), node!.store.stageDue()]);
      node!.runtime.dispatcher.wake();
      return resume.ok;
    }));
    for (const [i, id] of ids.entries()) {
      const job = await jobIn(node, id, 'succeeded');
      expect(job.result).toEqual({ decision: resumed[i] ? { approve: true } : null });
      expect((await node.store.getWait(waits[i]!.id))?.state).toBe(resumed[i] ? 'resolved' : 'timed_out');
    }
  });

  it('keeps the job suspended even when the handler catches the suspension and returns', async () => {
    node = await startTestNode({
      handlers: [{
        name: 'sneaky',
        async run(ctx) {
          try {
            await ctx.step.interrupt('ask', { prompt: 'ok?' });
          } catch {
            return 'carried on';
          }
          return 'resumed';
        },
      }],
    });
    const id = await enqueue(node, 'sneaky');
    await jobIn(node, id, 'suspended');
    expect((await node.store.getAttempts(id)).map((a) => a.outcome)).toEqual(['suspended']);
  });
});
