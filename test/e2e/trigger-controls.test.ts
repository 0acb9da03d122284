/**
 * Debounce, throttle and batch on triggers, end to end through the HTTP API
 * on both engines (vitest.config.ts BOTH_ENGINES), with the node's clock in
 * the test's hand: time moves only when the test says, and the due-job pass
 * is run by hand (`store.stageDue()`, then a dispatcher wake), so no test
 * sleeps and hopes. Each
 * control is also checked across a restart: the node stops with a merged
 * job pending and, started again on the same store, runs it exactly once
 * with every event.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

interface Run {
  handler: string;
  jobId: string;
  payload: any;
  eventId: string | null;
  at: number;
}

let now = 1_800_000_000_000;
const runs: Run[] = [];
let node: TestNode | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await node?.close();
  node = undefined;
  runs.length = 0;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function recorder(name: string, on: unknown): DroverConfig['handlers'][number] {
  return {
    name,
    on: on as never,
    run(ctx: any) {
      runs.push({ handler: name, jobId: ctx.job.id, payload: ctx.job.payload, eventId: ctx.event?.id ?? null, at: now });
    },
  };
}

const HANDLERS: DroverConfig['handlers'] = [
  recorder('debounced', { event: 'doc.edited', debounce: { key: 'data.doc', windowMs: 5_000, maxWaitMs: 10_000 } }),
  recorder('throttled', { event: 'mail.send', throttle: { key: 'tenant', limit: 2, periodMs: 1_000 } }),
  recorder('batched', { event: 'row.added', batch: { key: 'data.table', maxSize: 3, maxWaitMs: 60_000 } }),
  {
    name: 'flaky-batch',
    on: { event: 'flaky.row', batch: { maxSize: 2, maxWaitMs: 60_000 } },
    retry: { maxAttempts: 3, backoff: { initialMs: 10_000, jitter: 'none' as const } },
    run(ctx: any) {
      runs.push({ handler: 'flaky-batch', jobId: ctx.job.id, payload: ctx.job.payload, eventId: ctx.event?.id ?? null, at: now });
      if (ctx.job.attempt === 1) throw new Error('first attempt fails');
    },
  },
];

async function start(dir?: string): Promise<TestNode> {
  return startTestNode({ handlers: HANDLERS }, { clock: () => now, ...(dir ? { dir } : {}) });
}

async function send(n: TestNode, event: { name: string; data?: unknown; id?: string; tenant?: string }) {
  const res = await n.request('POST', '/v1/events', event);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** Move the node's clock and run the due-job pass, as its timer would. */
async function advance(n: TestNode, ms: number): Promise<void> {
  now += ms;
  await n.store.stageDue();
  n.runtime.dispatcher.wake();
}

const ran = (handler: string) => runs.filter((r) => r.handler === handler);

describe('debounce', () => {
  it('runs once after the last event of the window, with the last payload and event', async () => {
    node = await start();
    const first = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: 1 }, id: 'ed-1' });
    expect(first.jobs).toHaveLength(1);
    expect(first.jobs[0].trigger).toEqual({ kind: 'debounce', merged: false });
    const jobId = first.jobs[0].id;
    now += 2_000;
    const second = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: 2 }, id: 'ed-2' });
    // Another key has a window of its own.
    const other = await send(node, { name: 'doc.edited', data: { doc: 'b', rev: 1 }, id: 'ed-b' });
    now += 2_000;
    const third = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: 3 }, id: 'ed-3' });
    expect(second.jobs[0]).toMatchObject({ id: jobId, trigger: { kind: 'debounce', merged: true } });
    expect(third.jobs[0]).toMatchObject({ id: jobId, state: 'scheduled', runAt: new Date(now + 5_000).toISOString() });
    expect(other.jobs[0].id).not.toBe(jobId);

    await advance(node, 4_999);
    expect(ran('debounced')).toHaveLength(0);
    await advance(node, 1);
    await waitFor(() => ran('debounced').length === 2, { message: 'both keys ran' });
    const a = ran('debounced').find((r) => r.jobId === jobId)!;
    expect(a).toMatchObject({ payload: { doc: 'a', rev: 3 }, eventId: 'ed-3' });

    // Every event of the window names the job it went into.
    const shown = await node.request('GET', '/v1/events/ed-1');
    expect(shown.body.jobs).toEqual([expect.objectContaining({ id: jobId, trigger: { kind: 'debounce', merged: false } })]);
    expect((await node.request('GET', '/v1/events/ed-2')).body.jobs[0]).toMatchObject({ id: jobId, trigger: { kind: 'debounce', merged: true } });

    // A replayed event id is accepted once: it neither merges again nor opens a job.
    const replay = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: 9 }, id: 'ed-2' });
    expect(replay.created).toBe(false);
    expect(replay.jobs.map((j: any) => j.id)).toEqual([jobId]);
    expect((await node.request('GET', '/v1/jobs?handler=debounced')).body.jobs).toHaveLength(2);

    const metrics = (await node.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('drover_trigger_merges_total{handler="debounced",kind="debounce"} 2');
  });

  it('runs by first event + maxWaitMs under a constant stream, then opens a new window', async () => {
    node = await start();
    const ids = new Set<string>();
    // An edit every 4 s: each pushes the run 5 s on, never past the first + 10 s.
    for (let i = 0; i < 3; i++) {
      const answer = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: i } });
      ids.add(answer.jobs[0].id);
      if (i < 2) await advance(node, 4_000);
    }
    expect(ids.size).toBe(1);
    await advance(node, 2_000); // t = 10 s: the bound
    await waitFor(() => ran('debounced').length === 1, { message: 'the bounded run' });
    expect(ran('debounced')[0]!.payload).toEqual({ doc: 'a', rev: 2 });
    const next = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: 3 } });
    expect(next.jobs[0].id).not.toBe([...ids][0]);
    expect(next.jobs[0].trigger).toEqual({ kind: 'debounce', merged: false });
  });

  it('a window due before the stager saw it is closed by the next event, which opens a new one', async () => {
    node = await start();
    const first = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: 1 } });
    now += 6_000; // past the window, no poll
    const second = await send(node, { name: 'doc.edited', data: { doc: 'a', rev: 2 } });
    expect(second.jobs[0].id).not.toBe(first.jobs[0].id);
    await waitFor(() => ran('debounced').length === 1, { message: 'the closed window ran' });
    expect(ran('debounced')[0]!.payload).toEqual({ doc: 'a', rev: 1 });
  });
});

describe('throttle', () => {
  it('spaces starts at most `limit` per period per key and loses no event', async () => {
    node = await start();
    const t0 = now;
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await send(node, { name: 'mail.send', data: { n: i }, tenant: 'acme' }));
    answers.push(await send(node, { name: 'mail.send', data: { n: 'other' }, tenant: 'globex' }));
    const runAts = answers.map((a) => Date.parse(a.jobs[0].runAt) - t0);
    expect(runAts).toEqual([0, 500, 1_000, 1_500, 2_000, 0]);
    expect(answers.map((a) => a.jobs[0].trigger.delayedMs)).toEqual([0, 500, 1_000, 1_500, 2_000, 0]);
    // Each step of the clock starts exactly the jobs whose slot came.
    await waitFor(() => ran('throttled').length === 2, { message: 'the first slot of each key' });
    for (let step = 1; step <= 4; step++) {
      await advance(node, 500);
      await waitFor(() => ran('throttled').length === 2 + step, { message: `slot ${step}` });
    }
    const acme = ran('throttled').filter((r) => r.payload.n !== 'other');
    expect(acme.map((r) => r.payload.n)).toEqual([0, 1, 2, 3, 4]);
    // No 1 s window holds more than 2 starts of one key.
    for (const r of acme) expect(acme.filter((o) => o.at >= r.at && o.at < r.at + 1_000).length).toBeLessThanOrEqual(2);
    const metrics = (await node.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('drover_trigger_throttled_total{handler="throttled"} 4');
  });
});

describe('batch', () => {
  it('runs a full batch at once and the rest when the window ends; the payload lists the events in order', async () => {
    node = await start();
    const answers = [];
    for (let i = 1; i <= 4; i++) answers.push(await send(node, { name: 'row.added', data: { table: 't', row: i }, id: `row-${i}`, tenant: 'acme' }));
    expect(answers.map((a) => a.jobs[0].trigger.merged)).toEqual([false, true, true, false]);
    expect(answers[2].jobs[0].state).toBe('queued');
    await waitFor(() => ran('batched').length === 1, { message: 'the full batch ran' });
    expect(ran('batched')[0]!.payload).toEqual({
      events: [1, 2, 3].map((row) => ({ id: `row-${row}`, data: { table: 't', row }, tenant: 'acme', receivedAt: new Date(now).toISOString() })),
    });
    await advance(node, 59_999);
    expect(ran('batched')).toHaveLength(1);
    await advance(node, 1);
    await waitFor(() => ran('batched').length === 2, { message: 'the timed batch ran' });
    expect(ran('batched')[1]!.payload.events.map((e: any) => e.id)).toEqual(['row-4']);
  });

  it('closes a batch that would outgrow limits.maxPayloadBytes and opens the next', async () => {
    node = await startTestNode({ handlers: HANDLERS, limits: { maxPayloadBytes: 400 } }, { clock: () => now });
    const big = 'x'.repeat(150);
    const a = await send(node, { name: 'row.added', data: { table: 't', big } });
    const b = await send(node, { name: 'row.added', data: { table: 't', big } });
    expect(b.jobs[0].id).not.toBe(a.jobs[0].id);
    await waitFor(() => ran('batched').length === 1, { message: 'the closed batch ran at once' });
    expect(ran('batched')[0]!.payload.events).toHaveLength(1);
  });
});

describe('a merged job that has started', () => {
  it('takes no more events while it waits out a retry backoff: the next event opens a new batch', async () => {
    node = await start();
    const first = await send(node, { name: 'flaky.row', data: { n: 1 } });
    await send(node, { name: 'flaky.row', data: { n: 2 } }); // full: runs, fails, waits 10 s
    await waitFor(async () => (await node!.request('GET', `/v1/jobs/${first.jobs[0].id}`)).body.state === 'scheduled', { message: 'the retry is scheduled' });
    const third = await send(node, { name: 'flaky.row', data: { n: 3 } });
    expect(third.jobs[0].id).not.toBe(first.jobs[0].id);
    expect(third.jobs[0].trigger).toEqual({ kind: 'batch', merged: false });
    await advance(node, 10_000);
    await waitFor(() => ran('flaky-batch').length === 2, { message: 'the retry ran' });
    expect(ran('flaky-batch')[1]!.payload.events.map((e: any) => e.data.n)).toEqual([1, 2]);
  });
});

describe('batch of events in one request', () => {
  it('applies the events in order in one transaction: batches fill and the rest waits', async () => {
    node = await start();
    const res = await node.request('POST', '/v1/events', { events: [1, 2, 3, 4, 5].map((row) => ({ name: 'row.added', data: { table: 'q', row }, id: `q-${row}` })) });
    expect(res.status).toBe(202);
    const jobIds = res.body.events.map((e: any) => e.jobs[0].id);
    expect(jobIds[0]).toBe(jobIds[2]);
    expect(jobIds[3]).toBe(jobIds[4]);
    expect(jobIds[3]).not.toBe(jobIds[0]);
    await waitFor(() => ran('batched').length === 1, { message: 'the full batch ran' });
    await advance(node, 60_000);
    await waitFor(() => ran('batched').length === 2, { message: 'the timed batch ran' });
    expect(ran('batched').map((r) => r.payload.events.map((e: any) => e.data.row))).toEqual([[1, 2, 3], [4, 5]]);
  });
});

describe('retention', () => {
  it('prunes merge records with their events, and idle groups, without touching an open one', async () => {
    node = await start();
    await send(node, { name: 'row.added', data: { table: 'old' }, id: 'old-1' });
    await send(node, { name: 'mail.send', data: {}, tenant: 'old' });
    await advance(node, 60_000);
    // Finished and recorded, not only run: an event is pruned only once no unfinished job refers to it.
    const n = node;
    await waitFor(async () => (await n.store.listJobs({ state: 'succeeded', limit: 10 })).filter((j) => j.handler === 'batched' || j.handler === 'throttled').length === 2, { message: 'both succeeded' });
    const open = await send(node, { name: 'doc.edited', data: { doc: 'kept' } });
    now += 8 * 24 * 3_600_000; // past every default retention
    const still = await send(node, { name: 'doc.edited', data: { doc: 'kept', rev: 2 } }); // the window is due: a new one opens
    expect(still.jobs[0].id).not.toBe(open.jobs[0].id);
    await node.runtime.runTask('pruner');
    expect((await node.request('GET', '/v1/events/old-1')).status).toBe(404);
    // The open window survived the prune: the next event joins it.
    const joined = await send(node, { name: 'doc.edited', data: { doc: 'kept', rev: 3 } });
    expect(joined.jobs[0]).toMatchObject({ id: still.jobs[0].id, trigger: { kind: 'debounce', merged: true } });
    // The pruned groups start afresh.
    expect((await send(node, { name: 'row.added', data: { table: 'old' } })).jobs[0].trigger).toEqual({ kind: 'batch', merged: false });
  });
});

describe('runtime triggers (POST /v1/triggers)', () => {
  it('debounce and throttle their deliveries; batch and bad controls are refused at create', async () => {
    const bodies: any[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        bodies.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      node = await startTestNode({ handlers: HANDLERS, webhooks: { allowPrivateNetworks: true } }, { clock: () => now });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const action = { type: 'webhook', url, secret: 'whsec_test_secret_0123456789' };
      const created = await node.request('POST', '/v1/triggers', { on: 'order.*', debounce: { key: 'data.order', windowMs: 5_000 }, action });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.debounce).toEqual({ key: 'data.order', windowMs: 5_000 });

      const batch = await node.request('POST', '/v1/triggers', { on: 'order.*', batch: { maxSize: 5, maxWaitMs: 100 }, action });
      expect(batch.status).toBe(422);
      expect(batch.headers['content-type']).toContain('application/problem+json');
      expect(batch.body.detail).toContain('runtime triggers take debounce or throttle, not batch');
      const bad = await node.request('POST', '/v1/triggers', { on: 'order.*', throttle: { limit: 0, periodMs: 1000 }, action });
      expect(bad.status).toBe(422);
      expect(bad.body.detail).toContain('throttle.limit: expected an integer from 1 to 100000, got 0');
      expect((await node.request('GET', '/v1/triggers')).body.triggers).toHaveLength(1);

      const answers = [];
      for (let rev = 1; rev <= 3; rev++) answers.push(await send(node, { name: 'order.updated', data: { order: 'o1', rev } }));
      const deliveries = answers.map((a) => a.jobs.find((j: any) => j.handler === 'drover.webhook'));
      expect(new Set(deliveries.map((j: any) => j.id)).size).toBe(1);
      expect(deliveries.map((j: any) => j.trigger.merged)).toEqual([false, true, true]);
      await advance(node, 5_000);
      await waitFor(() => bodies.length === 1, { message: 'one delivery' }).catch(async (e) => {
        throw new Error(`${(e as Error).message}: ${JSON.stringify((await node!.request('GET', `/v1/jobs/${deliveries[0].id}`)).body)}`);
      });
      expect(bodies[0]).toMatchObject({ name: 'order.updated', data: { order: 'o1', rev: 3 } });
      await waitFor(async () => (await node!.request('GET', `/v1/jobs/${deliveries[0].id}`)).body.state === 'succeeded', { message: 'the delivery job succeeded' });
      expect(bodies).toHaveLength(1);

      expect((await node.request('POST', '/v1/triggers', { on: 'invoice.*', throttle: { limit: 1, periodMs: 1_000 }, action })).status).toBe(201);
      const paced = [];
      for (let n = 1; n <= 2; n++) paced.push((await send(node, { name: 'invoice.paid', data: { n } })).jobs.find((j: any) => j.handler === 'drover.webhook'));
      expect(paced.map((j: any) => j.trigger)).toEqual([{ kind: 'throttle', delayedMs: 0 }, { kind: 'throttle', delayedMs: 1_000 }]);
      await waitFor(() => bodies.length === 2, { message: 'the first paced delivery' });
      await advance(node, 1_000);
      await waitFor(() => bodies.length === 3, { message: 'the second paced delivery, one period later' });
      expect(bodies.slice(1).map((b) => b.data.n)).toEqual([1, 2]);
    } finally {
      await node?.close();
      node = undefined;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('across a restart', () => {
  it('a pending debounce, throttle and batch each run exactly once with every event', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-controls-'));
    dirs.push(dir);
    node = await start(dir);
    await send(node, { name: 'doc.edited', data: { doc: 'r', rev: 1 } });
    await send(node, { name: 'doc.edited', data: { doc: 'r', rev: 2 } });
    await send(node, { name: 'row.added', data: { table: 'r', row: 1 } });
    for (let i = 0; i < 3; i++) await send(node, { name: 'mail.send', data: { n: i }, tenant: 'r' });
    await waitFor(() => ran('throttled').length === 1, { message: 'the first throttled job ran' });
    await node.close();
    node = undefined;

    node = await start(dir);
    // The open batch is found again: the event after the restart joins it.
    const joined = await send(node, { name: 'row.added', data: { table: 'r', row: 2 } });
    expect(joined.jobs[0].trigger).toEqual({ kind: 'batch', merged: true });
    // The throttle's slots survived too: the next event waits behind the two pending ones.
    const fourth = await send(node, { name: 'mail.send', data: { n: 3 }, tenant: 'r' });
    expect(fourth.jobs[0].trigger.delayedMs).toBe(1_500);
    await advance(node, 5_000);
    await advance(node, 60_000);
    await waitFor(() => ran('debounced').length === 1 && ran('batched').length === 1 && ran('throttled').length === 4, { message: 'all pending jobs ran' }).catch(async (error) => {
      throw new Error(`${(error as Error).message}: ran ${JSON.stringify(runs)}; jobs ${JSON.stringify((await node!.request('GET', '/v1/jobs?limit=100')).body.jobs)}`);
    });
    expect(ran('debounced')[0]!.payload).toEqual({ doc: 'r', rev: 2 });
    expect(ran('batched')[0]!.payload.events.map((e: any) => e.data.row)).toEqual([1, 2]);
    expect(ran('throttled').map((r) => r.payload.n)).toEqual([0, 1, 2, 3]);
    // Six jobs for ten events, each finished once.
    const jobs = await waitFor(async () => {
      const list = (await node!.request('GET', '/v1/jobs?limit=100')).body.jobs;
      return list.every((j: any) => j.state === 'succeeded') && list;
    }, { message: 'every job succeeded' });
    expect(jobs).toHaveLength(6);
    expect(jobs.every((j: any) => j.attemptCount === 1)).toBe(true);
  });
});
