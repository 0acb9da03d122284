/**
 * The lease protocol's durable step calls (POST /v1/workers/steps, step,
 * suspend): fenced by the lease token and bound to the leasing key like
 * complete and fail, limits refused with 422, bad bodies with 4xx, never 5xx.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { injectAs, keyWith } from './support.js';

let node: TestNode;
let keyA: string;
let keyB: string;

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      { name: 'remote', remote: true, retry: { maxAttempts: 3, backoff: { initialMs: 10, jitter: 'none' } } },
      { name: 'small', remote: true },
    ],
    rateLimit: { enabled: false },
    durable: { maxStepResultBytes: 100, maxStepsPerJob: 2, maxStateBytesPerJob: 150 },
  });
  keyA = await keyWith(node, ['work'], 'worker-a');
  keyB = await keyWith(node, ['work'], 'worker-b');
});
afterAll(async () => node?.close());

const problem = (suffix: string) => `https://drover.dev/problems/${suffix}`;
const as = (key: string, path: string, body: unknown) => injectAs(node, key, 'POST', path, body);
const job = async (id: string) => (await node.request('GET', `/v1/jobs/${id}`)).body;

/** Enqueue a job of `handler` and lease it with `key`; returns its fence. */
async function leased(handler = 'remote', key = keyA): Promise<{ jobId: string; token: string }> {
  const created = await node.request('POST', '/v1/jobs', { handler, payload: {} });
  expect(created.status).toBe(202);
  // Other tests' jobs may still be queued: lease until ours comes.
  for (;;) {
    const res = await as(key, '/v1/workers/lease', { handlers: [handler], max: 1, leaseMs: 60_000 });
    expect(res.status).toBe(200);
    const got = res.body.jobs[0];
    if (!got) throw new Error(`job ${created.body.id} was not leased`);
    if (got.id === created.body.id) return { jobId: got.id, token: got.leaseToken };
    await as(key, '/v1/workers/complete', { jobId: got.id, token: got.leaseToken });
  }
}

/** One call of each kind (fence left out), each of which would write or read if the lease were the caller's. */
const stepCalls = () =>
  [
    ['steps', {}],
    ['step', { name: 'late', seq: 0, startedAt: Date.now(), result: 'x' }],
    ['suspend', { step: 'nap', seq: 0, kind: 'sleep', startedAt: Date.now(), timeoutMs: 60_000 }],
  ] as const;

describe('POST /v1/workers/steps and /step', () => {
  it('stores a step for the lease holder and reads it back in seq order', async () => {
    const fence = await leased();
    expect((await as(keyA, '/v1/workers/steps', fence)).body).toEqual({ steps: [] });
    const startedAt = Date.now() - 5;
    const stored = await as(keyA, '/v1/workers/step', { ...fence, name: 'load', seq: 0, kind: 'run', startedAt, result: { n: 1 } });
    expect(stored.status).toBe(200);
    expect(stored.body.step).toMatchObject({ name: 'load', seq: 0, kind: 'run', attempt: 1, result: { n: 1 }, timedOut: false, startedAt: new Date(startedAt).toISOString() });
    await as(keyA, '/v1/workers/step', { ...fence, name: 'second', seq: 1, startedAt: new Date().toISOString() });
    const steps = (await as(keyA, '/v1/workers/steps', fence)).body.steps;
    expect(steps.map((s: { name: string; result: unknown }) => [s.name, s.result])).toEqual([
      ['load', { n: 1 }],
      ['second', null],
    ]);
  });

  it('refuses a second step of the same name with 409 duplicate-step and keeps the first', async () => {
    const fence = await leased();
    expect((await as(keyA, '/v1/workers/step', { ...fence, name: 'once', seq: 0, startedAt: Date.now(), result: 1 })).status).toBe(200);
    const again = await as(keyA, '/v1/workers/step', { ...fence, name: 'once', seq: 1, startedAt: Date.now(), result: 2 });
    expect(again.status).toBe(409);
    expect(again.body.type).toBe(problem('duplicate-step'));
    expect((await as(keyA, '/v1/workers/steps', fence)).body.steps.map((s: { result: unknown }) => s.result)).toEqual([1]);
  });

  it('refuses a stale token with 409 stale-lease on every step call, and writes nothing', async () => {
    const fence = await leased();
    expect((await as(keyA, '/v1/workers/release', fence)).status).toBe(200);
    for (const [op, extra] of stepCalls()) {
      const res = await as(keyA, `/v1/workers/${op}`, { ...fence, ...extra });
      expect(res.status, op).toBe(409);
      expect(res.body.type).toBe(problem('stale-lease'));
    }
    // A random token on a running job is stale too.
    const live = await leased();
    const forged = await as(keyA, '/v1/workers/step', { ...live, token: randomUUID(), name: 'forged', seq: 0, startedAt: Date.now() });
    expect(forged.status).toBe(409);
    expect((await as(keyA, '/v1/workers/steps', live)).body.steps).toEqual([]);
    expect(await job(live.jobId)).toMatchObject({ state: 'running' });
  });

  it("refuses another key's lease with 403 lease-key-mismatch; the holder carries on", async () => {
    const fence = await leased('remote', keyA);
    for (const [op, extra] of stepCalls()) {
      const res = await as(keyB, `/v1/workers/${op}`, { ...fence, ...extra });
      expect(res.status, op).toBe(403);
      expect(res.body.type).toBe(problem('lease-key-mismatch'));
    }
    expect(await job(fence.jobId)).toMatchObject({ state: 'running' });
    expect((await as(keyA, '/v1/workers/steps', fence)).body.steps).toEqual([]);
  });

  it('refuses what passes the durable limits with 422 and writes nothing', async () => {
    const fence = await leased('small');
    const big = await as(keyA, '/v1/workers/step', { ...fence, name: 'big', seq: 0, startedAt: Date.now(), result: 'x'.repeat(200) });
    expect(big.status).toBe(422);
    expect(big.body.type).toBe(problem('step-result-too-large'));
    expect((await as(keyA, '/v1/workers/step', { ...fence, name: 'a', seq: 0, startedAt: Date.now(), result: 'y'.repeat(80) })).status).toBe(200);
    const state = await as(keyA, '/v1/workers/step', { ...fence, name: 'b', seq: 1, startedAt: Date.now(), result: 'z'.repeat(80) });
    expect(state.status).toBe(422);
    expect(state.body.type).toBe(problem('job-state-too-large'));
    expect((await as(keyA, '/v1/workers/step', { ...fence, name: 'b', seq: 1, startedAt: Date.now(), result: 1 })).status).toBe(200);
    const third = await as(keyA, '/v1/workers/step', { ...fence, name: 'c', seq: 2, startedAt: Date.now(), result: 1 });
    expect(third.status).toBe(422);
    expect(third.body.type).toBe(problem('too-many-steps'));
    expect((await as(keyA, '/v1/workers/steps', fence)).body.steps.map((s: { name: string }) => s.name)).toEqual(['a', 'b']);
  });

  it('answers bad bodies with 4xx problem+json naming the field, never 5xx', async () => {
    const fence = await leased();
    const bad: Array<[string, Record<string, unknown>]> = [
      ['step', { name: '', seq: 0, startedAt: 1 }],
      ['step', { name: 'bad\nname', seq: 0, startedAt: 1 }],
      ['step', { name: 'x', seq: -1, startedAt: 1 }],
      ['step', { name: 'x', seq: 0, startedAt: 'yesterday' }],
      ['step', { name: 'x', seq: 0, startedAt: 1, kind: 'sleep' }],
      ['step', { name: 'x', seq: 0 }],
      ['step', { name: 'x', seq: 0, startedAt: 1, extra: true }],
      ['suspend', { step: 'x', seq: 0, kind: 'sleep', startedAt: 1 }],
      ['suspend', { step: 'x', seq: 0, kind: 'event', startedAt: 1 }],
      ['suspend', { step: 'x', seq: 0, kind: 'interrupt', startedAt: 1 }],
      ['suspend', { step: 'x', seq: 0, kind: 'sleep', startedAt: 1, timeoutMs: 10, events: ['a'] }],
      ['suspend', { step: 'x', seq: 0, kind: 'event', startedAt: 1, events: ['a'], prompt: 'p' }],
      ['suspend', { step: 'x', seq: 0, kind: 'event', startedAt: 1, events: ['a'], match: { 'data.x': { nested: 1 } } }],
      ['suspend', { step: 'x', seq: 0, kind: 'nap', startedAt: 1, timeoutMs: 1 }],
      ['suspend', { step: 'x', seq: 0, kind: 'interrupt', startedAt: 1, prompt: 'ok?', schema: { type: 'no-such-type' } }],
    ];
    for (const [op, extra] of bad) {
      const res = await as(keyA, `/v1/workers/${op}`, { ...fence, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(422);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.type).toBe(problem('validation'));
    }
    const badSchema = await as(keyA, '/v1/workers/suspend', { ...fence, step: 'x', seq: 0, kind: 'interrupt', startedAt: 1, prompt: 'ok?', schema: { type: 'no-such-type' } });
    expect(badSchema.body.errors).toEqual([{ path: 'body.schema', message: 'is not a valid JSON Schema' }]);
    const notJson = await node.app.inject({ method: 'POST', url: '/v1/workers/step', headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' }, payload: '{"jobId":' });
    expect(notJson.statusCode).toBe(400);
    const missing = await as(keyA, '/v1/workers/steps', { jobId: 'no-such-job', token: fence.token });
    expect(missing.status).toBe(404);
    // Nothing was written by any of them.
    expect((await as(keyA, '/v1/workers/steps', fence)).body.steps).toEqual([]);
    expect(await job(fence.jobId)).toMatchObject({ state: 'running' });
  });
});

describe('POST /v1/workers/suspend', () => {
  it('suspends the job on a sleep (no retry spent), and it is leased again once the sleep is over', async () => {
    const fence = await leased();
    const res = await as(keyA, '/v1/workers/suspend', { ...fence, step: 'nap', seq: 0, kind: 'sleep', startedAt: Date.now(), timeoutMs: 300 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ suspended: true, wait: { step: 'nap', seq: 0, kind: 'sleep', state: 'pending', wakeAt: expect.any(String) } });
    expect(await job(fence.jobId)).toMatchObject({ state: 'suspended' });
    // The suspended attempt's token is spent.
    expect((await as(keyA, '/v1/workers/complete', fence)).status).toBe(409);
    let again: { id: string; leaseToken: string; attempt: number } | undefined;
    await waitFor(
      async () => {
        const got = (await as(keyA, '/v1/workers/lease', { handlers: ['remote'], max: 1, leaseMs: 60_000 })).body.jobs[0];
        if (got && got.id !== fence.jobId) await as(keyA, '/v1/workers/complete', { jobId: got.id, token: got.leaseToken });
        if (got?.id === fence.jobId) again = got;
        return again !== undefined;
      },
      { timeoutMs: 10_000, message: 'the job came back after its sleep' },
    );
    const steps = (await as(keyA, '/v1/workers/steps', { jobId: fence.jobId, token: again!.leaseToken })).body.steps;
    expect(steps).toMatchObject([{ name: 'nap', seq: 0, kind: 'sleep', result: null }]);
    expect((await as(keyA, '/v1/workers/complete', { jobId: fence.jobId, token: again!.leaseToken, result: 'ok' })).status).toBe(200);
    expect((await job(fence.jobId)).state).toBe('succeeded');
  });

  it('answers suspended: false with the event when a wait finds its event in the look-back', async () => {
    const fence = await leased();
    const startedAt = Date.now();
    const sent = await node.request('POST', '/v1/events', { name: 'order.paid', data: { order: fence.jobId } });
    expect(sent.status).toBe(202);
    const res = await as(keyA, '/v1/workers/suspend', {
      ...fence,
      step: 'paid',
      seq: 0,
      kind: 'event',
      startedAt,
      events: ['order.paid'],
      match: { 'data.order': fence.jobId },
      timeoutMs: 60_000,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ suspended: false, step: { name: 'paid', kind: 'event', result: { name: 'order.paid', data: { order: fence.jobId } } } });
    expect(await job(fence.jobId)).toMatchObject({ state: 'running' });
  });
});
