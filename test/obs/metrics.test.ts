/**
 * `/metrics` end to end: run a known workload on a real node, scrape, parse
 * the exposition and check exact counter values; check that label values stay
 * bounded (unknown paths add no series) and that known series exist at 0
 * before anything happened.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { DroverMetrics } from '../../src/obs/metrics.js';
import { parseExposition, type Exposition } from './exposition.js';

let node: TestNode | null = null;
afterEach(async () => {
  await node?.close();
  node = null;
});

async function scrape(n: TestNode): Promise<Exposition> {
  const response = await n.app.inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(response.body);
}

const noBackoff = { initialMs: 0, jitter: 'none' as const };

function workloadNode(clock?: () => number) {
  return startTestNode(
    {
      handlers: [
        { name: 'ok', on: 'order.created', run: async () => ({ done: true }) },
        {
          name: 'flaky',
          retry: { maxAttempts: 3, backoff: noBackoff },
          run: async (ctx) => {
            if (ctx.job.attempt === 1) throw new Error('first attempt fails');
          },
        },
        {
          name: 'doomed',
          retry: { maxAttempts: 2, backoff: noBackoff },
          run: async () => {
            throw new Error('always fails');
          },
        },
        // Run by remote workers only: its jobs stay queued here, for the depth gauges.
        { name: 'remote-h', queue: 'parked', remote: true },
      ],
      queues: { parked: {}, spare: {} },
      rateLimit: { enabled: false },
    },
    clock ? { clock } : {},
  );
}

describe('GET /metrics', () => {
  it('pre-initialises every known series at 0 and exposes build, process and event-loop metrics', async () => {
    node = await workloadNode();
    const m = await scrape(node);
    for (const handler of ['ok', 'flaky', 'doomed', 'remote-h']) {
      for (const outcome of ['succeeded', 'retried', 'dead', 'cancelled', 'timed_out']) {
        expect(m.value('drover_jobs_completed_total', { handler, outcome })).toBe(0);
      }
      expect(m.value('drover_jobs_started_total', { handler })).toBe(0);
      expect(m.value('drover_job_retries_total', { handler })).toBe(0);
      expect(m.value('drover_lease_expirations_total', { handler })).toBe(0);
      expect(m.value('drover_job_duration_seconds_count', { handler, outcome: 'succeeded' })).toBe(0);
      expect(m.value('drover_handler_breaker_state', { handler, state: 'closed' })).toBe(1);
      expect(m.value('drover_handler_breaker_state', { handler, state: 'open' })).toBe(0);
      expect(m.value('drover_handler_quarantined', { handler })).toBe(0);
    }
    expect(m.value('drover_jobs_enqueued_total', { queue: 'parked', handler: 'remote-h' })).toBe(0);
    for (const queue of ['default', 'parked', 'spare']) {
      for (const state of ['scheduled', 'queued', 'running']) expect(m.value('drover_queue_depth', { queue, state })).toBe(0);
      expect(m.value('drover_queue_oldest_job_age_seconds', { queue })).toBe(0);
      expect(m.value('drover_jobs_running', { queue })).toBe(0);
      expect(m.value('drover_job_wait_seconds_count', { queue })).toBe(0);
      expect(m.value('drover_backpressure_rejections_total', { queue, reason: 'queue_full' })).toBe(0);
    }
    expect(m.value('drover_events_ingested_total')).toBe(0);
    expect(m.value('drover_events_deduplicated_total')).toBe(0);
    expect(m.find('drover_build_info')).toHaveLength(1);
    expect(m.find('drover_build_info')[0]!.labels.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(m.types.get('drover_jobs_completed_total')).toBe('counter');
    expect(m.types.get('drover_job_duration_seconds')).toBe('histogram');
    expect(m.types.get('drover_queue_depth')).toBe('gauge');
    expect(m.find('drover_process_cpu_user_seconds_total')).toHaveLength(1);
    expect(m.find('drover_nodejs_eventloop_lag_seconds')).toHaveLength(1);
    expect(m.find('drover_process_resident_memory_bytes').length + m.find('drover_nodejs_heap_size_used_bytes').length).toBeGreaterThan(0);
    // Histogram buckets: HTTP tops out at 10 s, job runs reach 1 h.
    expect(m.find('drover_job_duration_seconds_bucket', { handler: 'ok', outcome: 'succeeded' }).map((s) => s.labels.le)).toContain('3600');
    // No metric name breaks the conventions: prefix, and counters end in _total.
    for (const [name, type] of m.types) {
      expect(name).toMatch(/^drover_/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
    }
  });

  it('creates thread-restart series at 0 for thread handlers only, and docs/observability.md documents every metric', async () => {
    const metrics = new DroverMetrics({
      handlers: [{ name: 'iso', queue: 'default', isolation: 'thread' }, { name: 'inline', queue: 'default', isolation: 'inline' }],
      queues: ['default'],
      engine: 'sqlite',
    });
    const m = parseExposition(await metrics.registry.metrics());
    for (const reason of ['memory', 'crash', 'timeout']) expect(m.value('drover_thread_restarts_total', { handler: 'iso', reason })).toBe(0);
    expect(m.find('drover_thread_restarts_total', { handler: 'inline' })).toEqual([]);
    const docs = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
    // Named in backticks, alone or with its labels (`drover_build_info{version}`).
    const undocumented = [...m.types.keys()].filter((name) => !docs.includes(`\`${name}\``) && !docs.includes(`\`${name}{`));
    expect(undocumented).toEqual([]);
  });

  it('counts a workload exactly', async () => {
    let offsetMs = 0;
    node = await workloadNode(() => Date.now() + offsetMs);
    const n = node;
    const post = async (url: string, body: unknown) => {
      const res = await n.request('POST', url, body);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body;
    };

    for (let i = 0; i < 4; i++) await post('/v1/events', { name: 'order.created', id: `order-${i}`, data: { i } });
    await post('/v1/events', { name: 'order.created', id: 'order-0', data: { i: 0 } }); // duplicate id
    // Two failures per handler at most: three in a row would open its circuit breaker (default policy).
    await post('/v1/jobs', { jobs: [{ handler: 'flaky' }, { handler: 'flaky' }] });
    await post('/v1/jobs', { handler: 'doomed' });
    await post('/v1/jobs', { handler: 'ok' });
    await post('/v1/jobs', { jobs: [{ handler: 'remote-h' }, { handler: 'remote-h' }] });
    const delayed = await post('/v1/jobs', { handler: 'remote-h', delayMs: 3_600_000 });

    await waitFor(
      async () => {
        const stats = (await n.store.queueStats()).find((s) => s.queue === 'default');
        return stats && stats.counts.succeeded === 7 && stats.counts.dead === 1 && stats.counts.running === 0 && stats.counts.queued === 0 && stats.counts.scheduled === 0;
      },
      { message: 'the workload to finish' },
    );
    expect((await n.request('GET', `/v1/jobs/${delayed.id}`)).status).toBe(200);
    expect((await n.request('POST', `/v1/jobs/${delayed.id}/cancel`)).status).toBe(200);
    offsetMs = 90_000; // the parked jobs have now waited 90 s

    const m = await scrape(n);
    expect(m.value('drover_events_ingested_total')).toBe(4);
    expect(m.value('drover_events_deduplicated_total')).toBe(1);
    expect(m.value('drover_jobs_enqueued_total', { queue: 'default', handler: 'ok' })).toBe(5);
    expect(m.value('drover_jobs_enqueued_total', { queue: 'default', handler: 'flaky' })).toBe(2);
    expect(m.value('drover_jobs_enqueued_total', { queue: 'default', handler: 'doomed' })).toBe(1);
    expect(m.value('drover_jobs_enqueued_total', { queue: 'parked', handler: 'remote-h' })).toBe(3);

    expect(m.value('drover_jobs_started_total', { handler: 'ok' })).toBe(5);
    expect(m.value('drover_jobs_started_total', { handler: 'flaky' })).toBe(4);
    expect(m.value('drover_jobs_started_total', { handler: 'doomed' })).toBe(2);
    expect(m.value('drover_jobs_started_total', { handler: 'remote-h' })).toBe(0);

    const completed = (handler: string, outcome: string) => m.value('drover_jobs_completed_total', { handler, outcome });
    expect([completed('ok', 'succeeded'), completed('ok', 'retried'), completed('ok', 'dead')]).toEqual([5, 0, 0]);
    expect([completed('flaky', 'succeeded'), completed('flaky', 'retried'), completed('flaky', 'dead')]).toEqual([2, 2, 0]);
    expect([completed('doomed', 'succeeded'), completed('doomed', 'retried'), completed('doomed', 'dead')]).toEqual([0, 1, 1]);
    expect(completed('remote-h', 'cancelled')).toBe(1);
    expect(m.value('drover_job_retries_total', { handler: 'flaky' })).toBe(2);
    expect(m.value('drover_job_retries_total', { handler: 'doomed' })).toBe(1);
    expect(m.value('drover_job_duration_seconds_count', { handler: 'flaky', outcome: 'retried' })).toBe(2);
    expect(m.value('drover_job_duration_seconds_count', { handler: 'doomed', outcome: 'dead' })).toBe(1);
    expect(m.value('drover_job_duration_seconds_bucket', { handler: 'ok', outcome: 'succeeded', le: '+Inf' })).toBe(5);
    expect(m.value('drover_job_wait_seconds_count', { queue: 'default' })).toBe(11);
    expect(m.value('drover_job_wait_seconds_count', { queue: 'parked' })).toBe(0);

    // One store call per outcome: 7 completions, 2 + 2 failed attempts.
    expect(m.value('drover_store_operation_duration_seconds_count', { op: 'complete', engine: 'sqlite' })).toBe(7);
    expect(m.value('drover_store_operation_duration_seconds_count', { op: 'fail', engine: 'sqlite' })).toBe(4);
    expect(m.value('drover_store_commit_operations_total', { engine: 'sqlite' })).toBeGreaterThanOrEqual(m.value('drover_store_commit_batches_total', { engine: 'sqlite' }));
    expect(m.value('drover_store_commit_batches_total', { engine: 'sqlite' })).toBeGreaterThan(0);

    expect(m.value('drover_http_requests_total', { method: 'POST', route: '/v1/events', status: '202' })).toBe(5);
    expect(m.value('drover_http_requests_total', { method: 'POST', route: '/v1/jobs', status: '202' })).toBe(5);
    expect(m.value('drover_http_requests_total', { method: 'GET', route: '/v1/jobs/:id', status: '200' })).toBe(1);
    expect(m.value('drover_http_requests_total', { method: 'POST', route: '/v1/jobs/:id/cancel', status: '200' })).toBe(1);
    expect(m.value('drover_http_request_duration_seconds_count', { method: 'POST', route: '/v1/events', status: '202' })).toBe(5);
    expect(m.find('drover_http_requests_total').every((s) => !s.labels.route!.includes(delayed.id))).toBe(true);

    expect(m.value('drover_queue_depth', { queue: 'parked', state: 'queued' })).toBe(2);
    expect(m.value('drover_queue_depth', { queue: 'parked', state: 'scheduled' })).toBe(0);
    expect(m.value('drover_queue_depth', { queue: 'default', state: 'queued' })).toBe(0);
    const age = m.value('drover_queue_oldest_job_age_seconds', { queue: 'parked' });
    expect(age).toBeGreaterThanOrEqual(90);
    expect(age).toBeLessThan(120);
    expect(m.value('drover_queue_oldest_job_age_seconds', { queue: 'default' })).toBe(0);
    expect(m.value('drover_jobs_running', { queue: 'default' })).toBe(0);
  });

  it('counts backpressure rejections by queue', async () => {
    node = await startTestNode({ handlers: [{ name: 'r', queue: 'tiny', remote: true }], queues: { tiny: { maxDepth: 1 } }, rateLimit: { enabled: false } });
    expect((await node.request('POST', '/v1/jobs', { handler: 'r' })).status).toBe(202);
    expect((await node.request('POST', '/v1/jobs', { handler: 'r' })).status).toBe(429);
    const m = await scrape(node);
    expect(m.value('drover_backpressure_rejections_total', { queue: 'tiny', reason: 'queue_full' })).toBe(1);
    expect(m.value('drover_http_requests_total', { method: 'POST', route: '/v1/jobs', status: '429' })).toBe(1);
    expect(m.value('drover_queue_depth', { queue: 'tiny', state: 'queued' })).toBe(1);
  });

  it('collapses unknown paths into one route label: 1,000 random paths add no series', async () => {
    node = await workloadNode();
    const n = node;
    await n.app.inject({ method: 'GET', url: '/warm-up' }); // the unmatched series now exists
    await n.app.inject({ method: 'POST', url: '/warm-up' });
    await scrape(n); // and so does the scrape's own
    const before = await scrape(n);
    const unmatched = (m: Exposition) => m.find('drover_http_requests_total', { route: 'unmatched', status: '404' }).reduce((sum, s) => sum + s.value, 0);
    for (let i = 0; i < 1000; i++) {
      const path = `/${randomUUID()}/${i % 7 === 0 ? 'v1/jobs' : 'x'}?q=${i}`;
      const res = await n.app.inject({ method: i % 2 === 0 ? 'GET' : 'POST', url: path });
      expect(res.statusCode).toBe(404);
    }
    const after = await scrape(n);
    const added = [...after.seriesKeys()].filter((key) => !before.seriesKeys().has(key));
    expect(added).toEqual([]);
    expect(unmatched(after) - unmatched(before)).toBe(1000);
  });
});
