/**
 * Intake through the HTTP API: events fan out to subscribed handlers in one
 * transaction, idempotency holds, bad input gets problem+json and writes nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

const seen: Array<{ handler: string; payload: unknown; event: string | null; tenant: string | null }> = [];
function recorder(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    ...extra,
    run(ctx: any) {
      seen.push({ handler: name, payload: ctx.job.payload, event: ctx.event?.name ?? null, tenant: ctx.event?.tenant ?? null });
    },
  };
}

describe('POST /v1/events', () => {
  it('fans an event out to every matching handler: exact, wildcard and filtered', async () => {
    seen.length = 0;
    node = await startTestNode({
      handlers: [
        recorder('exact', { on: 'order.created' }),
        recorder('wild', { on: 'order.*' }),
        recorder('deep', { on: 'order.**' }),
        recorder('big-only', { on: { event: 'order.created', filter: { total: { $gte: 100 } } } }),
        recorder('other', { on: 'user.created' }),
      ],
    });
    const small = await node.request('POST', '/v1/events', { name: 'order.created', data: { total: 5 }, id: 'evt-small', tenant: 'acme' });
    expect(small.status).toBe(202);
    expect(small.body.id).toBe('evt-small');
    expect(small.body.created).toBe(true);
    expect(small.body.jobs.map((j: any) => j.handler).sort()).toEqual(['deep', 'exact', 'wild']);

    const big = await node.request('POST', '/v1/events', { name: 'order.created', data: { total: 500 } });
    expect(big.status).toBe(202);
    expect(big.body.id).toMatch(/^evt_/);
    expect(big.body.jobs.map((j: any) => j.handler).sort()).toEqual(['big-only', 'deep', 'exact', 'wild']);

    const nested = await node.request('POST', '/v1/events', { name: 'order.line.added', data: {} });
    expect(nested.body.jobs.map((j: any) => j.handler)).toEqual(['deep']);

    await waitFor(() => seen.length === 8, { message: 'all 8 jobs ran' });
    const exact = seen.find((s) => s.handler === 'exact' && s.tenant === 'acme');
    expect(exact).toEqual({ handler: 'exact', payload: { total: 5 }, event: 'order.created', tenant: 'acme' });
  });

  it('accepts the same event id once and returns the original event and jobs', async () => {
    node = await startTestNode({ handlers: [recorder('h', { on: 'a.b' })] });
    const first = await node.request('POST', '/v1/events', { name: 'a.b', data: { n: 1 }, id: 'dup-1' });
    const second = await node.request('POST', '/v1/events', { name: 'a.b', data: { n: 2 }, id: 'dup-1' });
    expect(second.status).toBe(202);
    expect(second.body.created).toBe(false);
    expect(second.body.data).toEqual({ n: 1 });
    expect(second.body.jobs.map((j: any) => j.id)).toEqual(first.body.jobs.map((j: any) => j.id));
    const list = await node.request('GET', '/v1/jobs?handler=h');
    expect(list.body.jobs).toHaveLength(1);
  });

  it('accepts a batch in one request', async () => {
    node = await startTestNode({ handlers: [recorder('h', { on: 'b.*' })] });
    const res = await node.request('POST', '/v1/events', { events: [{ name: 'b.one' }, { name: 'b.two', id: 'two' }] });
    expect(res.status).toBe(202);
    expect(res.body.events).toHaveLength(2);
    expect(res.body.events[1].id).toBe('two');
  });
});

describe('POST /v1/jobs and GET /v1/jobs/:id', () => {
  it('enqueues a job for a named handler and shows its state and every attempt', async () => {
    let calls = 0;
    node = await startTestNode({
      handlers: [
        {
          name: 'flaky',
          retry: { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 5, jitter: 'none' } },
          run() {
            calls++;
            if (calls < 2) throw new Error('first attempt fails');
            return { ok: true };
          },
        },
      ],
    });
    const res = await node.request('POST', '/v1/jobs', { handler: 'flaky', payload: { x: 1 } });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const done = await waitFor(async () => {
      const job = await node!.request('GET', `/v1/jobs/${id}`);
      return job.body.state === 'succeeded' ? job.body : null;
    });
    expect(done.result).toEqual({ ok: true });
    expect(done.attemptCount).toBe(2);
    expect(done.attempts.map((a: any) => a.outcome)).toEqual(['failed', 'succeeded']);
    expect(done.attempts[0].error).toContain('first attempt fails');
  });

  it('deduplicates on idempotencyKey', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run() {} }] });
    const a = await node.request('POST', '/v1/jobs', { handler: 'h', idempotencyKey: 'k1' });
    const b = await node.request('POST', '/v1/jobs', { handler: 'h', idempotencyKey: 'k1' });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    expect(b.body.created).toBe(false);
  });

  it('holds a delayed job until its runAt', async () => {
    const ran: number[] = [];
    node = await startTestNode({ handlers: [{ name: 'later', run: () => void ran.push(Date.now()) }] });
    // Far enough ahead that the request is written before runAt even on a loaded machine (300 ms was not).
    const runAt = Date.now() + 1_500;
    const res = await node.request('POST', '/v1/jobs', { handler: 'later', runAt: new Date(runAt).toISOString() });
    expect(res.body.state).toBe('scheduled');
    await waitFor(() => ran.length === 1, { timeoutMs: 10_000 });
    expect(ran[0]!).toBeGreaterThanOrEqual(runAt - 5);
  });

  it('404s an unknown job as problem+json', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run() {} }] });
    const res = await node.request('GET', '/v1/jobs/999999');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.body.type).toBe('https://drover.dev/problems/not-found');
  });
});

describe('bad input gets a clear 4xx and writes nothing', () => {
  async function jobCount(n: TestNode): Promise<number> {
    const res = await n.request('GET', '/v1/jobs?limit=500');
    return res.body.jobs.length;
  }

  it.each([
    ['malformed JSON', '/v1/events', '{"name": "a.b",', 400, 'malformed-json'],
    ['missing name', '/v1/events', { data: {} }, 422, 'validation'],
    ['unknown field', '/v1/events', { name: 'a.b', extra: 1 }, 422, 'validation'],
    ['wildcard in event name', '/v1/events', { name: 'a.*' }, 422, 'validation'],
    ['unknown handler', '/v1/jobs', { handler: 'nope' }, 422, 'unknown-handler'],
    ['bad priority type', '/v1/jobs', { handler: 'h', priority: 'high' }, 422, 'validation'],
    ['bad runAt', '/v1/jobs', { handler: 'h', runAt: 'tomorrow' }, 422, 'validation'],
    ['batch over 1000', '/v1/events', { events: Array.from({ length: 1001 }, () => ({ name: 'a.b' })) }, 422, 'validation'],
  ])('%s', async (_label, url, body, status, type) => {
    node ??= await startTestNode({ handlers: [{ name: 'h', on: 'a.b', run() {} }] });
    const before = await jobCount(node);
    const res = await node.request('POST', url, body);
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.body.type).toBe(`https://drover.dev/problems/${type}`);
    expect(res.body.detail).toEqual(expect.any(String));
    expect(await jobCount(node)).toBe(before);
  });

  it('refuses a body over the size limit with 413', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', on: 'a.b', run() {} }], limits: { maxPayloadBytes: 1024 } });
    const res = await node.request('POST', '/v1/events', { name: 'a.b', data: 'x'.repeat(2000) });
    expect(res.status).toBe(413);
    expect(res.body.type).toBe('https://drover.dev/problems/payload-too-large');
    expect(await jobCount(node)).toBe(0);
  });

  it('refuses missing, wrong and under-scoped keys', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', on: 'a.b', run() {} }] });
    const none = await node.app.inject({ method: 'POST', url: '/v1/events', payload: { name: 'a.b' } });
    expect(none.statusCode).toBe(401);
    expect(none.headers['content-type']).toContain('application/problem+json');
    const wrong = await node.request('POST', '/v1/events', { name: 'a.b' }, { authorization: 'Bearer drv_not_a_real_key_at_all' });
    expect(wrong.status).toBe(401);
    const { createApiKey } = await import('../../src/api/auth.js');
    const { secret } = await createApiKey(node.store, { name: 'reader', scopes: ['read'], now: Date.now() });
    const forbidden = await node.request('POST', '/v1/events', { name: 'a.b' }, { authorization: `Bearer ${secret}` });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.type).toBe('https://drover.dev/problems/forbidden');
    const read = await node.request('GET', '/v1/jobs', undefined, { authorization: `Bearer ${secret}` });
    expect(read.status).toBe(200);
    expect(read.body.jobs).toHaveLength(0);
  });

  it('answers 429 with Retry-After when a queue is full, and still runs what it accepted', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let ran = 0;
    node = await startTestNode({
      handlers: [{ name: 'slow', concurrency: 1, async run() { await gate; ran++; } }],
      queues: { default: { maxDepth: 3 } },
    });
    for (let i = 0; i < 3; i++) expect((await node.request('POST', '/v1/jobs', { handler: 'slow' })).status).toBe(202);
    const refused = await node.request('POST', '/v1/jobs', { handler: 'slow' });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body.type).toBe('https://drover.dev/problems/queue-full');
    expect(await jobCount(node)).toBe(3);
    release();
    await waitFor(() => ran === 3);
    // A handler returns before its outcome is written (PostgreSQL batches the settles): wait for the rows, not the calls.
    await waitFor(async () => (await node!.request('GET', '/v1/jobs?state=succeeded')).body.jobs.length === 3, { message: 'the three accepted jobs succeeded' });
    expect((await node.request('POST', '/v1/jobs', { handler: 'slow' })).status).toBe(202);
  });

  it('collapses unknown routes into a problem+json 404', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run() {} }] });
    const res = await node.request('GET', '/v1/nope/123');
    expect(res.status).toBe(404);
    expect(res.body.type).toBe('https://drover.dev/problems/route-not-found');
  });
});
