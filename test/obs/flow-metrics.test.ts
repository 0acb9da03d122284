/**
 * Backpressure visibility (issue 20 item 6), end to end on real nodes: how
 * long a full queue has refused intake (`drover_queue_backpressure_seconds`
 * and `GET /v1/queues`), lease conflicts (a stale holder's completion refused,
 * `drover_lease_conflicts_total`), and recovery latency after a lease expiry
 * and after a real `drover start` process is SIGKILLed by PID
 * (`drover_recovery_latency_seconds`).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api } from '../helpers/child-node.js';
import { startTestNode, type TestEngine, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { createCluster, KEY, type Cluster } from '../multinode/cluster.js';
import { parseExposition } from './exposition.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function scrape(node: TestNode) {
  const response = await node.app.inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  return parseExposition(response.body);
}

/** A node whose clock the test moves forward (`advance`), so durations are exact. */
async function nodeWithClock(config: Parameters<typeof startTestNode>[0], engine: TestEngine = 'sqlite') {
  let offset = 0;
  const node = await startTestNode(config, { clock: () => Date.now() + offset, engine });
  cleanups.push(() => node.close());
  return { node, advance: (ms: number) => void (offset += ms) };
}

describe('backpressure', () => {
  it('reports how long a full queue has refused intake, and 0 once it has room again', async () => {
    const { node, advance } = await nodeWithClock({
      handlers: [{ name: 'slow', queue: 'narrow', run: async () => ({ ok: true }) }],
      queues: { narrow: { maxDepth: 1 } },
    });
    // Paused: the one job stays queued, so the queue stays full.
    expect((await node.request('POST', '/v1/queues/narrow/pause')).status).toBe(200);
    const first = await node.request('POST', '/v1/jobs', { handler: 'slow', payload: {} });
    expect(first.status).toBe(202);
    expect((await scrape(node)).value('drover_queue_backpressure_seconds', { queue: 'narrow' })).toBe(0);

    expect((await node.request('POST', '/v1/jobs', { handler: 'slow', payload: {} })).status).toBe(429);
    advance(90_000);
    expect((await node.request('POST', '/v1/jobs', { handler: 'slow', payload: {} })).status).toBe(429);
    advance(30_000);
    // Measured from the first refusal, not the latest.
    const seconds = (await scrape(node)).value('drover_queue_backpressure_seconds', { queue: 'narrow' });
    expect(seconds).toBeGreaterThanOrEqual(120);
    expect(seconds).toBeLessThan(125);
    const queues = await node.request('GET', '/v1/queues');
    const narrow = (queues.body as { queues: Array<{ name: string; backpressureSeconds: number }> }).queues.find((q) => q.name === 'narrow')!;
    expect(narrow.backpressureSeconds).toBeGreaterThanOrEqual(120);

    // Room again (the job is cancelled): not refusing, whether or not anyone enqueues.
    const id = (first.body as { id: string }).id;
    expect((await node.request('POST', `/v1/jobs/${id}/cancel`)).status).toBe(200);
    advance(2_000); // past the scrape cache
    expect((await scrape(node)).value('drover_queue_backpressure_seconds', { queue: 'narrow' })).toBe(0);
  });
});

describe.each(['sqlite', 'postgres'] as const)('lease expiry on %s', (engine) => {
  it('observes the recovery latency from the lease\'s expiry, and counts the stale holder\'s completion as a lease conflict', async () => {
    const { node, advance } = await nodeWithClock({ handlers: [{ name: 'far', remote: true }] }, engine);
    expect((await node.request('POST', '/v1/jobs', { handler: 'far', payload: {} })).status).toBe(202);
    const leased = await node.request('POST', '/v1/workers/lease', { handlers: ['far'], max: 1, waitMs: 0, leaseMs: 1_000 });
    const job = (leased.body as { jobs: Array<{ id: string; leaseToken: string }> }).jobs[0]!;
    expect(job).toBeTruthy();
    // The holder goes silent; 1.5 s after the lease expired the reaper takes the job back.
    advance(2_500);
    await node.runtime.runTask('reaper');
    expect((await node.request('GET', `/v1/jobs/${job.id}`)).body).toMatchObject({ state: 'queued' });

    const text = await scrape(node);
    expect(text.value('drover_recovery_latency_seconds_count', { cause: 'lease' })).toBe(1);
    const latency = text.value('drover_recovery_latency_seconds_sum', { cause: 'lease' });
    expect(latency).toBeGreaterThanOrEqual(1.5);
    expect(latency).toBeLessThan(3);
    expect(text.value('drover_recovery_latency_seconds_count', { cause: 'node' })).toBe(0);
    expect(text.value('drover_lease_conflicts_total', { handler: 'far', op: 'complete' })).toBe(0);

    // The old holder wakes up and reports: refused, counted, nothing written.
    const late = await node.request('POST', '/v1/workers/complete', { jobId: job.id, token: job.leaseToken, result: { late: true } });
    expect(late.status).toBe(409);
    expect((await scrape(node)).value('drover_lease_conflicts_total', { handler: 'far', op: 'complete' })).toBe(1);
    expect((await node.request('GET', `/v1/jobs/${job.id}`)).body).toMatchObject({ state: 'queued' });
  });
});

describe('node death (PostgreSQL, real processes)', () => {
  let cluster: Cluster | null = null;
  afterAll(async () => {
    await cluster?.close();
  });

  it('observes the recovery latency of a SIGKILLed node\'s jobs on the survivor', { timeout: 90_000 }, async () => {
    cluster = await createCluster();
    const survivor = await cluster.start('node-a');
    const victim = await cluster.start('node-b');
    const metrics = async () => parseExposition(await (await fetch(`${survivor.url}/metrics`)).text());
    // `fence` holds its first attempt for 1.5 s: enough jobs that node-b is caught holding some.
    await cluster.enqueue(survivor, Array.from({ length: 40 }, (_, n) => ({ handler: 'fence', payload: { n } })));
    await waitFor(async () => {
      const [held] = await cluster!.query<{ n: number }>("SELECT count(*)::int AS n FROM $schema.jobs WHERE state = 'running' AND worker_id = 'node-b'");
      return held!.n > 0;
    }, { timeoutMs: 30_000, message: 'node-b holding jobs' });
    process.kill(victim.pid, 'SIGKILL');
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });

    const text = await waitFor(async () => {
      const now = await metrics();
      return now.value('drover_recovery_latency_seconds_count', { cause: 'node' }) > 0 ? now : null;
    }, { timeoutMs: 30_000, intervalMs: 100, message: 'the survivor observed a node recovery' });
    const count = text.value('drover_recovery_latency_seconds_count', { cause: 'node' });
    const mean = text.value('drover_recovery_latency_seconds_sum', { cause: 'node' }) / count;
    // From node-b's heartbeat going stale (deadNodeMs) to its jobs queued again: about one heartbeat (1 s).
    expect(mean).toBeGreaterThanOrEqual(0);
    expect(mean).toBeLessThan(10);
    console.log(`recovery after SIGKILL: ${count} jobs, mean ${mean.toFixed(3)} s`);
    expect(text.value('drover_node_deaths_detected_total')).toBe(1);
    const status = await api(survivor.url, KEY, 'GET', '/v1/queues');
    expect(status.status).toBe(200);
  });
});
