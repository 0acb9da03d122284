/**
 * The remote worker protocol: lease (with long-poll), heartbeat, complete,
 * fail and release, fenced by the lease token. A stale token gets 409 and
 * changes nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

const localRuns: string[] = [];
async function start(extra: Record<string, unknown> = {}): Promise<TestNode> {
  node = await startTestNode({
    handlers: [
      { name: 'remote-a', remote: true, retry: { maxAttempts: 2, backoff: { initialMs: 50, jitter: 'none' } } },
      { name: 'remote-b', remote: true, queue: 'other' },
      { name: 'local', run: async (ctx) => void localRuns.push(ctx.job.id) },
    ],
    rateLimit: { enabled: false },
    ...extra,
  });
  return node;
}

async function enqueue(n: TestNode, handler: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await n.request('POST', '/v1/jobs', { handler, payload: { n: 1 }, ...extra });
  expect(res.status).toBe(202);
  return res.body.id;
}

/** Resolves once a lease request is waiting for work (it subscribes to the store's notifications to wait). */
function leaseWaiting(n: TestNode): Promise<void> {
  const original = n.store.onWork.bind(n.store);
  return new Promise((resolve) => {
    n.store.onWork = (listener) => {
      n.store.onWork = original;
      const off = original(listener);
      resolve();
      return off;
    };
  });
}

async function leaseOne(n: TestNode, handlers = ['remote-a'], extra: Record<string, unknown> = {}) {
  const res = await n.request('POST', '/v1/workers/lease', { handlers, max: 1, leaseMs: 60_000, ...extra });
  expect(res.status).toBe(200);
  return res.body.jobs[0] as { id: string; leaseToken: string; attempt: number; payload: unknown; leaseExpiresAt: string } | undefined;
}

describe('POST /v1/workers/lease', () => {
  it('hands out a job with its lease token, payload and attempt, once', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = await leaseOne(n);
    expect(job).toMatchObject({ id, handler: 'remote-a', queue: 'default', payload: { n: 1 }, attempt: 1, maxAttempts: 2 });
    expect(job?.leaseToken).toEqual(expect.any(String));
    expect(await leaseOne(n)).toBeUndefined();
    const stored = await n.request('GET', `/v1/jobs/${id}`);
    expect(stored.body).toMatchObject({ state: 'running', workerId: 'remote:key_' + stored.body.workerId.slice('remote:key_'.length) });
    expect(stored.body.workerId).toMatch(/^remote:/);
  });

  it('refuses handlers that are not configured with 422 unknown-handler', async () => {
    const n = await start();
    const res = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-a', 'nope'] });
    expect(res.status).toBe(422);
    expect(res.body.type).toBe('https://drover.dev/problems/unknown-handler');
    expect(res.body.handlers).toEqual(['nope']);
  });

  it('never lets the node run a remote handler itself', async () => {
    const n = await start();
    const remote = await enqueue(n, 'remote-a');
    const local = await enqueue(n, 'local');
    await waitFor(() => localRuns.includes(local), { message: 'the local job ran' });
    expect((await n.request('GET', `/v1/jobs/${remote}`)).body.state).toBe('queued');
  });

  it('long-polls: a waiting lease returns as soon as a job is enqueued', async () => {
    const n = await start();
    const started = performance.now();
    const waiting = leaseWaiting(n);
    const pending = n.request('POST', '/v1/workers/lease', { handlers: ['remote-a'], waitMs: 20_000 });
    await waiting;
    const id = await enqueue(n, 'remote-a');
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.jobs.map((j: { id: string }) => j.id)).toEqual([id]);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('long-polls: work committed for handlers the lease did not ask for does not make it look again', async () => {
    const n = await start();
    const looks: string[][] = [];
    const lease = n.store.lease.bind(n.store);
    n.store.lease = (request) => {
      if (request.workerId !== n.runtime.workerId) looks.push(request.handlers.map((h) => h.name));
      return lease(request);
    };
    const waiting = leaseWaiting(n);
    const pending = n.request('POST', '/v1/workers/lease', { handlers: ['remote-a'], waitMs: 20_000 });
    await waiting;
    await waitFor(() => looks.length === 1, { timeoutMs: 5_000, message: 'the first look of the waiting lease' });
    for (let i = 0; i < 5; i++) await enqueue(n, 'remote-b');
    const id = await enqueue(n, 'remote-a');
    const res = await pending;
    expect(res.body.jobs.map((j: { id: string }) => j.id)).toEqual([id]);
    // The first look and the one remote-a's job woke; none for remote-b's five.
    expect(looks).toEqual([['remote-a'], ['remote-a']]);
  });

  it('long-polls until waitMs and then answers with no jobs', async () => {
    const n = await start();
    const started = performance.now();
    const res = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-a'], waitMs: 300 });
    const elapsed = performance.now() - started;
    expect(res.body).toEqual({ jobs: [], capped: [] });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('ends a waiting lease when the node closes, so shutdown is not held up', async () => {
    const n = await start();
    const waiting = leaseWaiting(n);
    const pending = n.request('POST', '/v1/workers/lease', { handlers: ['remote-a'], waitMs: 60_000 });
    await waiting;
    const started = performance.now();
    await n.close();
    node = undefined;
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body.jobs).toEqual([]);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('leases nothing from a paused handler or queue, and a resume wakes a waiting lease', async () => {
    const n = await start();
    const a = await enqueue(n, 'remote-a');
    const b = await enqueue(n, 'remote-b');
    expect((await n.request('POST', '/v1/handlers/remote-a/pause')).status).toBe(200);
    expect((await n.request('POST', '/v1/queues/other/pause')).status).toBe(200);
    expect(await leaseOne(n, ['remote-a', 'remote-b'])).toBeUndefined();

    const subscribed = leaseWaiting(n);
    const waiting = n.request('POST', '/v1/workers/lease', { handlers: ['remote-a', 'remote-b'], max: 2, waitMs: 20_000 });
    await subscribed;
    expect((await n.request('POST', '/v1/handlers/remote-a/resume')).status).toBe(200);
    expect((await waiting).body.jobs.map((j: { id: string }) => j.id)).toEqual([a]);

    expect((await n.request('POST', '/v1/queues/other/resume')).status).toBe(200);
    expect((await leaseOne(n, ['remote-b']))?.id).toBe(b);
  });
});

describe('supervision holds remote workers too', () => {
  const supervised = () =>
    start({
      handlers: [
        // Quarantined after 2 failures; the breaker is out of the way (it would open at 3).
        { name: 'remote-q', remote: true, quarantine: { failures: 2, windowMs: 60_000 }, breaker: { failures: 3 }, retry: { maxAttempts: 5, backoff: { initialMs: 1, jitter: 'none' } } },
        // Opens after 1 failure, probes 200 ms later.
        { name: 'remote-cb', remote: true, quarantine: { failures: 100 }, breaker: { failures: 1, coolDownMs: 200 }, retry: { maxAttempts: 5, backoff: { initialMs: 1, jitter: 'none' } } },
        { name: 'remote-rl', remote: true, rateLimit: { limit: 2, periodMs: 60_000 } },
        { name: 'remote-rk', remote: true, rateLimit: { limit: 1, periodMs: 60_000, key: 'payload.tenant' } },
      ],
      rateLimit: { enabled: false },
    });
  const fail = async (n: TestNode, job: { id: string; leaseToken: string }) =>
    expect((await n.request('POST', '/v1/workers/fail', { jobId: job.id, token: job.leaseToken, error: 'boom' })).status).toBe(200);

  it('leases nothing of a quarantined handler; its jobs wait unspent, and a reset lets them out', async () => {
    const n = await supervised();
    const ids = [await enqueue(n, 'remote-q'), await enqueue(n, 'remote-q'), await enqueue(n, 'remote-q')];
    await fail(n, (await leaseOne(n, ['remote-q']))!);
    await fail(n, (await leaseOne(n, ['remote-q']))!);
    const view = (await n.request('GET', '/v1/handlers')).body.handlers.find((h: { name: string }) => h.name === 'remote-q');
    expect(view.quarantined).toBe(true);
    expect(await leaseOne(n, ['remote-q'])).toBeUndefined();
    const waiting = (await n.request('GET', `/v1/jobs/${ids[2]}`)).body;
    expect(waiting).toMatchObject({ state: 'queued' });
    expect(waiting.attempts).toHaveLength(0);

    expect((await n.request('POST', '/v1/handlers/remote-q/reset')).status).toBe(200);
    const res = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-q'], max: 3, waitMs: 5_000 });
    expect(res.body.jobs).toHaveLength(3);
  });

  it('leases nothing while the breaker is open, then one probe at a time until it closes', async () => {
    const n = await supervised();
    for (let i = 0; i < 3; i++) await enqueue(n, 'remote-cb');
    await fail(n, (await leaseOne(n, ['remote-cb']))!);
    expect(await leaseOne(n, ['remote-cb'])).toBeUndefined();
    // After the cool-down, a waiting lease gets exactly one job, the probe, however many it asked for.
    const probe = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-cb'], max: 3, waitMs: 5_000 });
    expect(probe.body.jobs).toHaveLength(1);
    expect(await leaseOne(n, ['remote-cb'])).toBeUndefined();
    const [job] = probe.body.jobs as Array<{ id: string; leaseToken: string }>;
    expect((await n.request('POST', '/v1/workers/complete', { jobId: job!.id, token: job!.leaseToken, result: null })).status).toBe(200);
    // Closed: the rest go in one lease.
    const rest = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-cb'], max: 3, waitMs: 5_000 });
    expect(rest.body.jobs).toHaveLength(2);
  });

  it('caps a lease at the rate limit, and hands a job over its key\'s limit back unspent for later', async () => {
    const n = await supervised();
    for (let i = 0; i < 3; i++) await enqueue(n, 'remote-rl');
    const first = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-rl'], max: 3 });
    expect(first.body.jobs).toHaveLength(2);
    expect(await leaseOne(n, ['remote-rl'])).toBeUndefined();

    const a = await n.request('POST', '/v1/jobs', { handler: 'remote-rk', payload: { tenant: 'a' } });
    const b = await n.request('POST', '/v1/jobs', { handler: 'remote-rk', payload: { tenant: 'a' } });
    const got = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-rk'], max: 2 });
    expect(got.body.jobs.map((j: { id: string }) => j.id)).toEqual([a.body.id]);
    const held = (await n.request('GET', `/v1/jobs/${b.body.id}`)).body;
    expect(held.state).toBe('scheduled');
    expect(held.attempts.filter((x: { outcome: string }) => x.outcome !== 'released')).toHaveLength(0);
    expect(Date.parse(held.runAt)).toBeGreaterThan(Date.now() + 30_000);
  });
});

describe('heartbeat, complete, fail, release', () => {
  it('completes once; the same token again is 409 stale-lease and changes nothing', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n))!;
    const done = await n.request('POST', '/v1/workers/complete', { jobId: id, token: job.leaseToken, result: { sum: 3 } });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ id, state: 'succeeded', result: { sum: 3 } });

    const again = await n.request('POST', '/v1/workers/complete', { jobId: id, token: job.leaseToken, result: { sum: 4 } });
    expect(again.status).toBe(409);
    expect(again.body.type).toBe('https://drover.dev/problems/stale-lease');
    const stored = await n.request('GET', `/v1/jobs/${id}`);
    expect(stored.body).toMatchObject({ state: 'succeeded', result: { sum: 3 } });
    expect(stored.body.attempts).toHaveLength(1);
  });

  it('extends the lease on heartbeat; a wrong token is 409, an unknown job 404', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n, ['remote-a'], { leaseMs: 5_000 }))!;
    const beat = await n.request('POST', '/v1/workers/heartbeat', { jobId: id, token: job.leaseToken, leaseMs: 600_000 });
    expect(beat.status).toBe(200);
    expect(Date.parse(beat.body.leaseExpiresAt)).toBeGreaterThan(Date.parse(job.leaseExpiresAt));
    const wrong = await n.request('POST', '/v1/workers/heartbeat', { jobId: id, token: 'not-the-token' });
    expect(wrong.status).toBe(409);
    expect((await n.request('GET', `/v1/jobs/${id}`)).body.leaseExpiresAt).toBe(beat.body.leaseExpiresAt);
    const missing = await n.request('POST', '/v1/workers/heartbeat', { jobId: '999999', token: 't' });
    expect(missing.status).toBe(404);
  });

  it('decides a failure with the handler policy: retry after backoff, then dead when attempts run out', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const first = (await leaseOne(n))!;
    const forged = await n.request('POST', '/v1/workers/fail', { jobId: id, token: 'not-the-token', error: 'forged' });
    expect(forged.status).toBe(409);
    expect((await n.request('GET', `/v1/jobs/${id}`)).body).toMatchObject({ state: 'running', lastError: null });
    const failed = await n.request('POST', '/v1/workers/fail', { jobId: id, token: first.leaseToken, error: 'Error: upstream 502\n    at worker.py:12' });
    expect(failed.status).toBe(200);
    expect(['scheduled', 'queued']).toContain(failed.body.state);
    expect(failed.body.retryAt).toEqual(expect.any(String));
    expect(failed.body.lastError).toContain('upstream 502');

    // The retry comes due (50 ms backoff) and a waiting lease gets it.
    const second = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-a'], waitMs: 10_000 });
    expect(second.body.jobs[0]).toMatchObject({ id, attempt: 2 });
    const dead = await n.request('POST', '/v1/workers/fail', { jobId: id, token: second.body.jobs[0].leaseToken, error: 'again' });
    expect(dead.body).toMatchObject({ state: 'dead', deadReason: 'exhausted', retryAt: null });
    const stale = await n.request('POST', '/v1/workers/fail', { jobId: id, token: first.leaseToken, error: 'late' });
    expect(stale.status).toBe(409);
    expect((await n.request('GET', `/v1/jobs/${id}`)).body).toMatchObject({ state: 'dead', lastError: 'again' });
  });

  it('kills a job at once on a non-retryable failure', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n))!;
    const res = await n.request('POST', '/v1/workers/fail', { jobId: id, token: job.leaseToken, error: 'bad input', nonRetryable: true });
    expect(res.body).toMatchObject({ state: 'dead', deadReason: 'non_retryable' });
  });

  it('rejects the outcome of a cancelled job (409) and keeps it cancelled', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n))!;
    expect((await n.request('POST', `/v1/jobs/${id}/cancel`)).status).toBe(200);
    const res = await n.request('POST', '/v1/workers/complete', { jobId: id, token: job.leaseToken, result: 1 });
    expect(res.status).toBe(409);
    expect((await n.request('GET', `/v1/jobs/${id}`)).body.state).toBe('cancelled');
  });

  it('fences out a holder whose lease expired and was reaped', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n, ['remote-a'], { leaseMs: 1_000 }))!;
    await waitFor(
      async () => {
        await n.runtime.runTask('reaper');
        return (await n.request('GET', `/v1/jobs/${id}`)).body.state === 'queued';
      },
      { intervalMs: 100, message: 'the expired lease was reaped' },
    );
    const late = await n.request('POST', '/v1/workers/complete', { jobId: id, token: job.leaseToken });
    expect(late.status).toBe(409);
    const again = (await leaseOne(n))!;
    expect(again).toMatchObject({ id, attempt: 2 });
  });

  it('release hands a job back without spending the attempt', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n))!;
    const res = await n.request('POST', '/v1/workers/release', { jobId: id, token: job.leaseToken });
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('queued');
    const again = (await leaseOne(n))!;
    expect(again.id).toBe(id);
    const attempts = (await n.request('GET', `/v1/jobs/${id}`)).body.attempts;
    expect(attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['released', 'running']);
  });

  it('accepts outcomes while the node drains, but no new leases', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n))!;
    await n.runtime.stop(1_000);
    const lease = await n.request('POST', '/v1/workers/lease', { handlers: ['remote-a'] });
    expect(lease.status).toBe(503);
    expect(lease.headers['retry-after']).toBe('5');
    const done = await n.request('POST', '/v1/workers/complete', { jobId: id, token: job.leaseToken });
    expect(done.status).toBe(200);
    expect(done.body.state).toBe('succeeded');
  });

  it('logs a remote outcome with the request id of the report', async () => {
    const n = await start();
    const id = await enqueue(n, 'remote-a');
    const job = (await leaseOne(n))!;
    await n.request('POST', '/v1/workers/fail', { jobId: id, token: job.leaseToken, error: 'boom' }, { 'x-request-id': 'req-remote-fail-1' });
    const lines = n.logLines.filter((l) => l.job_id === id);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.request_id).toBe('req-remote-fail-1');
    expect(lines[0]).toMatchObject({ msg: 'job attempt failed; will retry', worker_id: expect.stringMatching(/^remote:/) });
  });
});
