/**
 * The retention pruner's metrics on a real node (both engines): rows pruned
 * per table, when the last run ended and how long it took.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { parseExposition } from './exposition.js';

let node: TestNode | null = null;
afterEach(async () => {
  await node?.close();
  node = null;
});

describe('retention metrics', () => {
  it('count the rows each prune run deleted per table, and when and how long the last run took', async () => {
    node = await startTestNode({
      handlers: [{ name: 'quick', on: 'quick.*', run: async () => ({ ok: true }) }],
      // Everything finished is past retention at once; the pruner is run by hand below.
      retention: { succeededMs: 0, deadMs: 0, eventsMs: 0, intervalMs: 3_600_000 },
    });
    const n = node;
    const scrape = async () => parseExposition((await n.app.inject({ method: 'GET', url: '/metrics' })).body);
    const before = await scrape();
    expect(before.value('drover_retention_pruned_rows_total', { table: 'jobs' })).toBe(0);
    expect(before.value('drover_retention_last_run_timestamp_seconds')).toBe(0);

    for (let i = 0; i < 3; i++) expect((await n.request('POST', '/v1/events', { name: 'quick.run', id: `e-${i}`, data: { i } })).status).toBe(202);
    await waitFor(async () => {
      const { jobs } = (await n.request('GET', '/v1/jobs?state=succeeded')).body as { jobs: unknown[] };
      return jobs.length === 3;
    }, { message: 'three jobs succeeded' });
    const startedAt = Date.now();
    await n.runtime.runTask('pruner');

    const after = await scrape();
    expect(after.value('drover_retention_pruned_rows_total', { table: 'jobs' })).toBe(3);
    expect(after.value('drover_retention_pruned_rows_total', { table: 'events' })).toBe(3);
    expect(after.value('drover_retention_last_run_timestamp_seconds')).toBeGreaterThanOrEqual(Math.floor(startedAt / 1000));
    expect(after.value('drover_retention_last_run_duration_seconds')).toBeGreaterThanOrEqual(0);
    expect(after.value('drover_retention_last_run_duration_seconds')).toBeLessThan(10);
  });
});
