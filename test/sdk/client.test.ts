/**
 * `drover/client` against a real node on a real socket: intake, reads,
 * pagination, operator actions, waitForJob over SSE, typed errors, retries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { attemptJson, eventJson, jobJson, jobRef } from '../../src/api/serialize.js';
import { createClient, DroverApiError, DroverNetworkError, DroverTimeoutError, isProblem, type Attempt, type DroverClient, type Event, type Job, type JobRef } from '../../src/sdk/client.js';
import { parseRetryAfter } from '../../src/sdk/http.js';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { listen } from '../api/support.js';

// The SDK's wire types must accept what the server sends (compile-time check).
type Assignable<T, U extends T> = U;
export type WireShapes = [
  Assignable<Job, ReturnType<typeof jobJson>>,
  Assignable<Attempt, ReturnType<typeof attemptJson>>,
  Assignable<Event, ReturnType<typeof eventJson>>,
  Assignable<JobRef, ReturnType<typeof jobRef>>,
];

let node: TestNode;
let base: string;
let client: DroverClient;
const gates = new Map<string, () => void>();

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      { name: 'echo', on: 'order.*', run: async (ctx) => ({ echoed: ctx.job.payload }) },
      {
        name: 'gated',
        run: (ctx) => new Promise((resolve) => gates.set((ctx.job.payload as { gate: string }).gate, () => resolve('opened'))),
      },
      { name: 'fails', retry: { maxAttempts: 1 }, run: async () => Promise.reject(new Error('nope')) },
      { name: 'r', remote: true },
    ],
    rateLimit: { max: 10_000, windowMs: 1_000, routes: { 'GET /v1/status': 1 } },
  });
  base = await listen(node);
  client = createClient({ url: base, key: ADMIN_KEY });
});
afterAll(async () => node?.close());

describe('createClient', () => {
  it('sends events with client-side ids, so a resend is accepted once', async () => {
    const sent = await client.sendEvent({ name: 'order.created', data: { n: 1 } });
    expect(sent.id).toMatch(/^evt_[0-9a-f-]{36}$/);
    expect(sent.created).toBe(true);
    expect(sent.jobs.map((j) => j.handler)).toEqual(['echo']);
    const again = await client.sendEvent({ name: 'order.created', data: { n: 1 }, id: sent.id });
    expect(again.created).toBe(false);
    const batch = await client.sendEvents([{ name: 'order.a' }, { name: 'order.b', tenant: 'acme' }]);
    expect(batch.map((e) => e.name)).toEqual(['order.a', 'order.b']);
    const event = await client.getEvent(sent.id);
    expect(event.jobs).toHaveLength(1);
  });

  it('enqueues and waits for a job over the event stream', async () => {
    const job = await client.enqueue({ handler: 'gated', payload: { gate: 'g1' } });
    expect(job).toMatchObject({ handler: 'gated', created: true });
    const waiting = client.waitForJob(job.id, { timeoutMs: 10_000 });
    await waitUntil(() => gates.has('g1'));
    gates.get('g1')!();
    const done = await waiting;
    expect(done).toMatchObject({ id: job.id, state: 'succeeded', result: 'opened' });
    expect(done.attempts).toHaveLength(1);
    // Already finished: answers at once.
    expect((await client.waitForJob(job.id)).state).toBe('succeeded');
  });

  it('waitForJob resolves for dead jobs and times out with the last state', async () => {
    const failing = await client.enqueue({ handler: 'fails' });
    expect((await client.waitForJob(failing.id, { timeoutMs: 10_000 })).state).toBe('dead');
    const stuck = await client.enqueue({ handler: 'r' });
    const error = await client.waitForJob(stuck.id, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DroverTimeoutError);
    expect((error as DroverTimeoutError).lastState).toBe('queued');
  });

  it('lists jobs across pages, newest first, without gaps or repeats', async () => {
    const created = await client.enqueueMany(Array.from({ length: 23 }, (_, i) => ({ handler: 'r', delayMs: 3_600_000, payload: { i }, queue: 'default' })));
    const ids = created.map((j) => j.id);
    const seen: string[] = [];
    for await (const job of client.listJobs({ handler: 'r', state: 'scheduled', pageSize: 10 })) seen.push(job.id);
    expect(seen).toEqual([...ids].reverse());
    const pages: number[] = [];
    for await (const page of client.listJobPages({ handler: 'r', state: 'scheduled', pageSize: 10 })) pages.push(page.jobs.length);
    expect(pages).toEqual([10, 10, 3]);
    // Payload fields (nested with dots) and creation time, as GET /v1/jobs takes them.
    const picked: unknown[] = [];
    for await (const job of client.listJobs({ handler: 'r', payload: { i: '7' }, createdAfter: new Date(Date.now() - 60_000) })) picked.push(job.payload);
    expect(picked).toEqual([{ i: 7 }]);
    const none: unknown[] = [];
    for await (const job of client.listJobs({ handler: 'r', payload: { i: '7' }, createdBefore: new Date(Date.now() - 60_000) })) none.push(job.id);
    expect(none).toEqual([]);
  });

  it('cancels and retries', async () => {
    const job = await client.enqueue({ handler: 'r', runAt: new Date(Date.now() + 3_600_000) });
    expect((await client.cancel(job.id)).state).toBe('cancelled');
    expect((await client.retry(job.id)).state).toBe('queued');
    const error = await client.retry(job.id).catch((e: unknown) => e);
    expect(isProblem(error, 'invalid-state')).toBe(true);
  });

  it('throws typed errors carrying the problem type and request id', async () => {
    const error = await client.enqueue({ handler: 'missing' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DroverApiError);
    const e = error as DroverApiError;
    expect(e).toMatchObject({ code: 'unknown-handler', status: 422, type: 'https://drover.dev/problems/unknown-handler' });
    expect(e.requestId).toEqual(expect.any(String));
    expect(e.problem.handler).toBe('missing');
    const notFound = await client.getJob('123456789').catch((x: unknown) => x);
    expect(isProblem(notFound, 'not-found')).toBe(true);
    const unauthorized = await createClient({ url: base, key: 'drv_wrong_0000000000000000' }).getJob('1').catch((x: unknown) => x);
    expect(isProblem(unauthorized, 'unauthorized')).toBe(true);
  });

  it('retries a 429 after Retry-After, or gives up with the typed error when told not to retry', async () => {
    await client.request('GET', '/v1/status');
    const started = performance.now();
    const status = await client.request<{ state: string }>('GET', '/v1/status');
    expect(status.state).toBe('running');
    expect(performance.now() - started).toBeGreaterThan(500);

    const impatient = createClient({ url: base, key: ADMIN_KEY, retries: 0 });
    await impatient.request('GET', '/v1/status').catch(() => undefined);
    const error = await impatient.request('GET', '/v1/status').catch((e: unknown) => e);
    expect(isProblem(error, 'rate-limited')).toBe(true);
    expect((error as DroverApiError).retryAfterMs).toBeGreaterThan(0);
  });

  it('streams state changes and stops when the loop breaks', async () => {
    const seen: string[] = [];
    const streaming = (async () => {
      for await (const message of client.stream({ handler: 'echo' })) {
        if (message.event === 'job') seen.push(message.data.state);
        if (message.event === 'job' && message.data.state === 'succeeded') break;
      }
    })();
    // The stream is open once the server has answered; poke until our event shows up.
    await waitUntil(async () => {
      await client.sendEvent({ name: 'order.streamed' });
      return seen.length > 0;
    });
    await streaming;
    expect(seen.at(-1)).toBe('succeeded');
  });
});

describe('transport', () => {
  const problem = (status: number, code: string) =>
    new Response(JSON.stringify({ type: `https://drover.dev/problems/${code}`, title: code, status, detail: code }), {
      status,
      headers: { 'content-type': 'application/problem+json', 'retry-after': '0' },
    });

  it('retries 503 (always) and network errors (reads only)', async () => {
    const calls: string[] = [];
    const answers: Array<() => Response> = [() => problem(503, 'shutting-down'), () => new Response(JSON.stringify({ id: '1', state: 'queued' }), { status: 200 })];
    const fake = (async (url: string | URL | Request, init?: RequestInit) => {
      calls.push(`${init?.method} ${String(url)}`);
      if (calls.length === 1) throw new TypeError('fetch failed');
      return answers.shift()!();
    }) as typeof fetch;
    const c = createClient({ url: 'http://drover.invalid', key: 'k', fetch: fake });
    expect(await c.getJob('1')).toMatchObject({ id: '1' });
    expect(calls).toEqual(['GET http://drover.invalid/v1/jobs/1', 'GET http://drover.invalid/v1/jobs/1', 'GET http://drover.invalid/v1/jobs/1']);

    // A POST without an idempotency key is not resent after a network error: it may have been committed.
    const failing = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const error = await createClient({ url: 'http://drover.invalid', key: 'k', fetch: failing }).enqueue({ handler: 'h' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DroverNetworkError);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});

async function waitUntil(probe: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
