/**
 * `POST /v1/jobs/bulk`: retry or cancel a filtered set of jobs as a run the
 * node tracks; progress readable by id; only what the filter matched is
 * touched; jobs the action does not apply to are skipped; one audit record.
 * Runs on both engines (the progress lives in the store's metadata).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonRetryableError } from '../../src/core/errors.js';
import { injectAs, keyWith } from '../api/support.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode;
let healthy = false;

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      {
        name: 'charge',
        retry: { maxAttempts: 1 },
        // Failing on purpose: neither quarantine nor the breaker may hold the retried jobs back.
        quarantine: { failures: 1000 },
        breaker: { failures: 1000, minRequests: 1000 },
        run: async () => {
          if (!healthy) throw new NonRetryableError('card declined');
          return 'charged';
        },
      },
      { name: 'later', run: async () => undefined },
    ],
    rateLimit: { enabled: false },
  });
});
afterAll(async () => node?.close());

const enqueue = async (handler: string, payload: unknown, extra: Record<string, unknown> = {}) => (await node.request('POST', '/v1/jobs', { handler, payload, ...extra })).body.id as string;
const state = async (id: string) => (await node.request('GET', `/v1/jobs/${id}`)).body.state as string;
const finished = async (runId: string) =>
  waitFor(
    async () => {
      const run = (await node.request('GET', `/v1/jobs/bulk/${runId}`)).body;
      return run.state !== 'running' ? run : null;
    },
    { timeoutMs: 20_000, intervalMs: 50, message: 'the bulk run finished' },
  );

describe('bulk retry and cancel', () => {
  it('retries the dead jobs a payload filter matches, and only those', async () => {
    healthy = false;
    const mine = [await enqueue('charge', { orderId: 'o-1', n: 1 }), await enqueue('charge', { orderId: 'o-1', n: 2 }), await enqueue('charge', { orderId: 'o-1', n: 3 })];
    const other = await enqueue('charge', { orderId: 'o-2' });
    for (const id of [...mine, other]) await waitFor(async () => (await state(id)) === 'dead', { timeoutMs: 15_000, message: `job ${id} dead` });
    healthy = true;

    const started = await node.request('POST', '/v1/jobs/bulk', { action: 'retry', filter: { state: 'dead', payload: { orderId: 'o-1' } } });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ id: expect.stringMatching(/^bulk_/), action: 'retry', state: 'running' });
    const run = await finished(started.body.id);
    expect(run).toMatchObject({ state: 'done', matched: 3, changed: 3, skipped: 0, error: null, filter: { state: 'dead', payload: [{ path: ['orderId'], value: 'o-1' }] } });
    for (const id of mine) await waitFor(async () => (await state(id)) === 'succeeded', { timeoutMs: 15_000, message: `job ${id} ran again` });
    expect(await state(other)).toBe('dead');

    const listed = (await node.request('GET', '/v1/jobs/bulk')).body.runs;
    expect(listed[0].id).toBe(started.body.id);
    const audit = (await node.request('GET', '/v1/audit?limit=20')).body.records as Array<{ action: string; target: string; after: unknown }>;
    const record = audit.find((r) => r.target === `bulk:${started.body.id}`)!;
    expect(record).toMatchObject({ action: 'job.bulk-retry', after: { filter: { state: 'dead', payload: { orderId: 'o-1' } } } });
  });

  it('cancels across pages; matched jobs already finished are skipped', async () => {
    const scheduled: string[] = [];
    for (let i = 0; i < 230; i++) scheduled.push(await enqueue('later', { batch: 'b-7', i }, { delayMs: 3_600_000 }));
    const done = await enqueue('later', { batch: 'b-7', i: 'now' });
    await waitFor(async () => (await state(done)) === 'succeeded', { message: 'the immediate job ran' });
    const started = await node.request('POST', '/v1/jobs/bulk', { action: 'cancel', filter: { handler: 'later', payload: { batch: 'b-7' } } });
    const run = await finished(started.body.id);
    expect(run).toMatchObject({ state: 'done', matched: 231, changed: 230, skipped: 1 });
    expect(new Set(await Promise.all([scheduled[0]!, scheduled[229]!].map(state)))).toEqual(new Set(['cancelled']));
  });

  it('refuses an empty filter, a bad payload path, a read key; an unknown run is 404', async () => {
    expect((await node.request('POST', '/v1/jobs/bulk', { action: 'retry', filter: {} })).status).toBe(422);
    const bad = await node.request('POST', '/v1/jobs/bulk', { action: 'retry', filter: { payload: { "a') OR 1=1": 'x' } } });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toMatch(/payload/);
    const reader = await keyWith(node, ['read']);
    expect((await injectAs(node, reader, 'POST', '/v1/jobs/bulk', { action: 'cancel', filter: { handler: 'later' } })).status).toBe(403);
    expect((await node.request('GET', '/v1/jobs/bulk/bulk_nope')).status).toBe(404);
  });
});
