/**
 * An approval flow through a real node, end to end: a handler runs a step
 * and asks a person (`ctx.step.interrupt`); the stream shows the job
 * suspended and the interrupt pending; a `resume` key answers over HTTP; the
 * handler re-runs from the top, its first step memoized, and finishes with
 * the answer. An interrupt nobody answers times out (the stream says so) and
 * a late resume is 409. The metrics count all of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { createClient, DroverApiError } from '../../src/sdk/client.js';
import { injectAs, keyWith, listen, openSse, type SseConnection } from '../api/support.js';

const loads = new Map<string, number>();

const config: Omit<DroverConfig, 'databaseUrl'> = {
  handlers: [
    {
      name: 'approve-refund',
      async run(ctx) {
        const { orderId, amount, timeoutMs } = ctx.job.payload as { orderId: string; amount: number; timeoutMs?: number };
        const order = await ctx.step.run('load-order', () => {
          loads.set(orderId, (loads.get(orderId) ?? 0) + 1);
          return { id: orderId, amount };
        });
        const decision = await ctx.step.interrupt<{ approve: boolean; note?: string }>('manager-approval', {
          prompt: `Refund ${order.amount} for ${order.id}?`,
          schema: { type: 'object', properties: { approve: { type: 'boolean' }, note: { type: 'string' } }, required: ['approve'] },
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        });
        return { refunded: decision?.approve === true, decision };
      },
    },
  ],
  rateLimit: { enabled: false },
};

let node: TestNode;
let base: string;
let resumeKey: string;
let stream: SseConnection;

beforeAll(async () => {
  node = await startTestNode(config);
  base = await listen(node);
  resumeKey = await keyWith(node, ['resume'], 'approvals');
  stream = await openSse(base, '/v1/stream?handler=approve-refund');
});
afterAll(async () => {
  stream?.close();
  await stream?.closed;
  await node?.close();
});

const messagesOf = (jobId: string) => stream.messages().filter((m) => m.data?.id === jobId || m.data?.jobId === jobId);

async function enqueue(payload: Record<string, unknown>): Promise<string> {
  const res = await node.request('POST', '/v1/jobs', { handler: 'approve-refund', payload });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

async function jobState(id: string, state: string): Promise<Record<string, any>> {
  return waitFor(async () => {
    const job = (await node.request('GET', `/v1/jobs/${id}`)).body;
    return job.state === state ? job : null;
  }, { timeoutMs: 15_000, message: `job ${id} ${state}` });
}

describe('approval flow', () => {
  it('suspends, shows the interrupt, resumes with the input and finishes; the first step ran once', async () => {
    const id = await enqueue({ orderId: 'o-1', amount: 120 });
    const suspended = await jobState(id, 'suspended');
    expect(suspended.steps).toEqual([expect.objectContaining({ name: 'load-order', kind: 'run', status: 'succeeded', attempt: 1 })]);
    expect(suspended.wait).toMatchObject({ reason: 'interrupt', step: 'manager-approval', wakeAt: null });
    const interruptId = suspended.wait.interruptId as string;

    await waitFor(() => messagesOf(id).some((m) => m.event === 'interrupt'), { message: 'interrupt created on the stream' });
    expect(messagesOf(id)).toContainEqual(expect.objectContaining({ event: 'job', data: expect.objectContaining({ state: 'suspended', reason: 'interrupt', step: 'manager-approval', waitId: interruptId }) }));
    expect(messagesOf(id)).toContainEqual(expect.objectContaining({ event: 'interrupt', data: expect.objectContaining({ id: interruptId, state: 'pending', step: 'manager-approval' }) }));

    const shown = await injectAs(node, resumeKey, 'GET', `/v1/interrupts/${interruptId}`);
    expect(shown.body).toMatchObject({ jobId: id, prompt: 'Refund 120 for o-1?', state: 'pending' });
    expect((await injectAs(node, resumeKey, 'POST', `/v1/interrupts/${interruptId}/resume`, { input: { approve: 'sure' } })).status).toBe(422);

    const resumed = await injectAs(node, resumeKey, 'POST', `/v1/interrupts/${interruptId}/resume`, { input: { approve: true, note: 'fine' } });
    expect(resumed.status).toBe(200);
    const done = await jobState(id, 'succeeded');
    expect(done.result).toEqual({ refunded: true, decision: { approve: true, note: 'fine' } });
    expect(done.steps.map((s: { name: string; kind: string }) => `${s.name}:${s.kind}`)).toEqual(['load-order:run', 'manager-approval:interrupt']);
    expect(done.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['suspended', 'succeeded']);
    expect(loads.get('o-1')).toBe(1);

    await waitFor(() => messagesOf(id).some((m) => m.event === 'job' && m.data.state === 'succeeded'), { message: 'succeeded on the stream' });
    const states = messagesOf(id).map((m) => `${m.event}:${m.data.state}${m.data.cause ? `:${m.data.cause}` : ''}`);
    expect(states).toEqual(expect.arrayContaining(['interrupt:pending', 'job:suspended', 'interrupt:resumed', 'job:queued:resume', 'job:succeeded']));
    expect(states.indexOf('interrupt:resumed')).toBeGreaterThan(states.indexOf('interrupt:pending'));

    const again = await injectAs(node, resumeKey, 'POST', `/v1/interrupts/${interruptId}/resume`, { input: { approve: false } });
    expect(again.status).toBe(409);
    expect(again.body.state).toBe('resumed');
  });

  it('times out without an answer: the handler gets null, the stream says timed_out, a late resume is 409', async () => {
    const id = await enqueue({ orderId: 'o-2', amount: 5, timeoutMs: 300 });
    const done = await jobState(id, 'succeeded');
    expect(done.result).toEqual({ refunded: false, decision: null });
    expect(done.steps.find((s: { name: string }) => s.name === 'manager-approval')).toMatchObject({ status: 'timed_out' });
    const interrupt = messagesOf(id).find((m) => m.event === 'interrupt')!.data;
    await waitFor(() => messagesOf(id).some((m) => m.event === 'interrupt' && m.data.state === 'timed_out'), { message: 'timed out on the stream' });
    const late = await injectAs(node, resumeKey, 'POST', `/v1/interrupts/${interrupt.id}/resume`, { input: { approve: true } });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ type: 'https://drover.dev/problems/interrupt-not-pending', state: 'timed_out' });
  });

  it('drover/client lists, reads and resumes interrupts with a resume key', async () => {
    const client = createClient({ url: base, key: resumeKey });
    const id = await enqueue({ orderId: 'o-3', amount: 7 });
    const interruptId = (await jobState(id, 'suspended')).wait.interruptId as string;
    const page = await client.listInterrupts({ state: 'pending', handler: 'approve-refund' });
    expect(page.interrupts.map((i) => i.id)).toContain(interruptId);
    expect(await client.getInterrupt(interruptId)).toMatchObject({ jobId: id, prompt: 'Refund 7 for o-3?', state: 'pending' });
    const { interrupt, job } = await client.resumeInterrupt(interruptId, { approve: false });
    expect(interrupt.state).toBe('resumed');
    expect(job.state).toBe('queued');
    expect((await jobState(id, 'succeeded')).result).toEqual({ refunded: false, decision: { approve: false } });
    const again = await client.resumeInterrupt(interruptId, { approve: true }).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(DroverApiError);
    expect(again).toMatchObject({ status: 409, code: 'interrupt-not-pending' });
  });

  it('counts steps by outcome and suspensions by reason', async () => {
    const scrape = (await node.app.inject({ method: 'GET', url: '/metrics' })).body;
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(scrape)?.[1]);
    expect(value('drover_steps_total{handler="approve-refund",outcome="succeeded"}')).toBeGreaterThanOrEqual(2);
    expect(value('drover_steps_total{handler="approve-refund",outcome="memoized"}')).toBeGreaterThanOrEqual(2);
    expect(value('drover_jobs_suspended_total{handler="approve-refund",reason="interrupt"}')).toBe(3);
    expect(value('drover_interrupts_pending')).toBe(0);
    expect(value('drover_interrupt_oldest_pending_age_seconds')).toBe(0);
  });
});
