/**
 * Lease order end to end (docs/configuration.md "Flow control"), on both
 * engines: weighted priority with aging against a constant stream of
 * high-priority jobs (and the strict contrast), tenant fairness behind a
 * 10,000-job backlog (PostgreSQL also with two nodes on one schema), and the
 * restamp of waiting jobs when a node starts with new weights.
 *
 * Order, not timing: the node's clock is a fake one the test advances, the
 * queue is paused while the backlog is written, and handlers record the order
 * they start in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { LEASE_AHEAD_MAX, LEASE_AHEAD_MIN, LEASE_AHEAD_MS } from '../../src/runtime/lease-window.js';
import { startTestNode, TEST_ENGINES, type TestEngine, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const T0 = 1_700_000_000_000;
const open: TestNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const node of open.splice(0).reverse()) await node.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(engine: TestEngine, config: Omit<DroverConfig, 'databaseUrl'>, clock: () => number, dir?: string): Promise<TestNode> {
  const node = await startTestNode(config, { engine, clock, ...(dir ? { dir } : {}) });
  open.push(node);
  return node;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'drover-flow-'));
  dirs.push(dir);
  return dir;
}

async function post(node: TestNode, url: string, body?: unknown) {
  const res = await node.request('POST', url, body);
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return res.body;
}

describe.each(TEST_ENGINES)('lease order on %s', (engine) => {
  describe('weighted priority with aging', () => {
    /**
     * One low-priority job (priority 0), then 100 high-priority ones
     * (priority 10) 10 ms apart; every high job that runs adds another 10 ms
     * later, up to 200 more: a stream that never lets the queue run out of
     * high-priority work (the backlog stays above the dispatcher's lease-ahead
     * buffer, so the store's order is what decides). With
     * `{priority: 0.5, age: 0.5}` and `ageUnitMs: 10`, ten levels are worth
     * 100 ms of waiting: the low job goes after the high jobs that arrived
     * within 100 ms of it (the first 9) and before every later one.
     */
    async function runStream(weights: { priority: number; age: number }): Promise<number> {
      let now = T0;
      const started: string[] = [];
      let produced = 0;
      const node = await start(
        engine,
        {
          queues: { stream: { weights, ageUnitMs: 10 } },
          handlers: [
            {
              name: 'work',
              queue: 'stream',
              concurrency: 1,
              async run(ctx) {
                const kind = (ctx.job.payload as { kind: string }).kind;
                started.push(kind);
                if (kind === 'high' && produced < 200) {
                  produced++;
                  now += 10;
                  await node.runtime.enqueueJobs([{ handler: 'work', payload: { kind: 'high' }, priority: 10 }]);
                }
              },
            },
          ],
        },
        () => now,
      );
      await post(node, '/v1/queues/stream/pause');
      await post(node, '/v1/jobs', { handler: 'work', payload: { kind: 'low' }, priority: 0 });
      for (let i = 0; i < 100; i++) {
        now += 10;
        await post(node, '/v1/jobs', { handler: 'work', payload: { kind: 'high' }, priority: 10 });
      }
      await post(node, '/v1/queues/stream/resume');
      await waitFor(() => started.includes('low'), { timeoutMs: 60_000, message: 'the low-priority job ran' });
      return started.indexOf('low');
    }

    it('serves a low-priority job within its priority gap × priorityMs under a constant high-priority stream', async () => {
      // Bound: 10 levels × 10 ms = 100 ms of arrivals at one per 10 ms: at most 10 high jobs before it.
      expect(await runStream({ priority: 0.5, age: 0.5 })).toBe(9);
    });

    it('with strict weights the same stream keeps it waiting until the stream ends', async () => {
      expect(await runStream({ priority: 1, age: 0 })).toBe(300);
    });

    it('restamps waiting jobs when a node starts with new weights', async () => {
      let now = T0;
      const started: string[] = [];
      const dir = tempDir();
      const config = (weights: { priority: number; age: number }): Omit<DroverConfig, 'databaseUrl'> => ({
        queues: { stream: { weights, ageUnitMs: 1 } },
        handlers: [{ name: 'work', queue: 'stream', concurrency: 1, run: (ctx) => void started.push((ctx.job.payload as { kind: string }).kind) }],
      });
      const strict = await start(engine, config({ priority: 1, age: 0 }), () => now, dir);
      await post(strict, '/v1/queues/stream/pause');
      await post(strict, '/v1/jobs', { handler: 'work', payload: { kind: 'low' }, priority: 0 });
      now += 50;
      await post(strict, '/v1/jobs', { handler: 'work', payload: { kind: 'high' }, priority: 10 });
      await strict.close();
      open.splice(open.indexOf(strict), 1);

      // Aged: ten levels are worth 10 ms; the low job has waited 50 ms longer.
      const aged = await start(engine, config({ priority: 0.5, age: 0.5 }), () => now, dir);
      const line = aged.logLines.find((l) => l.msg === 'waiting jobs restamped with their queue weights');
      expect(line).toMatchObject({ jobs: 2 });
      const queues = (await aged.request('GET', '/v1/queues')).body.queues;
      expect(queues.find((q: { name: string }) => q.name === 'stream')).toMatchObject({ weights: { priority: 0.5, age: 0.5 }, ageUnitMs: 1, priorityMs: 1, fairness: 'none' });
      expect(queues.find((q: { name: string }) => q.name === 'default')).toMatchObject({ weights: { priority: 1, age: 0 }, priorityMs: 'strict' });
      await post(aged, '/v1/queues/stream/resume');
      await waitFor(() => started.length === 2, { message: 'both jobs ran' });
      expect(started).toEqual(['low', 'high']);
    });
  });

  describe('fairness across tenants', () => {
    const CONCURRENCY = 4;

    /**
     * A noisy tenant's 10,000 jobs, written while the queue is paused; then
     * `nodes` nodes drain them and a quiet tenant's job arrives mid-drain.
     * Returns how many jobs started between its enqueue and its start.
     * `jobMs`: each job's run time; above 50 ms the dispatcher leases no jobs
     * ahead, so only running jobs stand between the store's order and a start;
     * below, its lease-ahead buffer too (runtime/lease-window.ts: about
     * LEASE_AHEAD_MS of the handler's work, from max(concurrency, 64) to
     * LEASE_AHEAD_MAX jobs). `warmup`: jobs started before the quiet job is
     * enqueued (enough for the buffer to have grown to its size).
     */
    async function quietJobWait(nodes: number, jobMs: number, warmup = 40 * nodes): Promise<{ between: number; started: number }> {
      const started: string[] = [];
      const dir = tempDir();
      const config: Omit<DroverConfig, 'databaseUrl'> = {
        server: { port: 0 }, // a node id of its own per node on a shared store
        queues: { imports: { fairness: 'tenant' } },
        handlers: [
          {
            name: 'import',
            queue: 'imports',
            concurrency: CONCURRENCY,
            async run(ctx) {
              started.push((ctx.job.payload as { t: string }).t);
              if (jobMs > 0) await new Promise((resolve) => setTimeout(resolve, jobMs));
            },
          },
        ],
      };
      const first = await start(engine, config, Date.now, dir);
      await post(first, '/v1/queues/imports/pause');
      for (let batch = 0; batch < 10; batch++) {
        await post(first, '/v1/jobs', { jobs: Array.from({ length: 1000 }, () => ({ handler: 'import', tenant: 'noisy', payload: { t: 'noisy' } })) });
      }
      for (let n = 1; n < nodes; n++) await start(engine, config, Date.now, dir);
      await post(first, '/v1/queues/imports/resume');
      // Pauses reach other nodes within seconds (they poll): wait until every node has started some.
      await waitFor(() => started.length >= warmup, { timeoutMs: 60_000, message: 'the backlog is draining' });
      await post(first, '/v1/jobs', { handler: 'import', tenant: 'quiet', payload: { t: 'quiet' } });
      const atEnqueue = started.length;
      await waitFor(() => started.includes('quiet'), { timeoutMs: 30_000, message: 'the quiet tenant’s job started' });
      return { between: started.indexOf('quiet') - atEnqueue, started: started.length };
    }

    it('starts a quiet tenant’s job within concurrency + 2 jobs behind a 10,000-job backlog', async () => {
      const { between, started } = await quietJobWait(1, 60);
      expect(between).toBeLessThanOrEqual(CONCURRENCY + 2);
      expect(started).toBeLessThan(10_000); // it did not wait for the backlog
    });

    it('quick jobs: within concurrency + the lease-ahead buffer at its largest + 2', async () => {
      const { between, started } = await quietJobWait(1, 0, 1_000);
      expect(between).toBeLessThanOrEqual(CONCURRENCY + LEASE_AHEAD_MAX + 2);
      expect(started).toBeLessThan(10_000);
    });

    it('quick jobs that take a few ms: the buffer holds its floor, as LEASE_AHEAD_MS of their work is fewer jobs', async () => {
      // 4 slots of 5 ms finish at most 0.8 jobs a ms: 16 jobs in 20 ms, below the floor of 64.
      expect((CONCURRENCY / 5) * LEASE_AHEAD_MS).toBeLessThan(LEASE_AHEAD_MIN);
      const { between, started } = await quietJobWait(1, 5, 200);
      expect(between).toBeLessThanOrEqual(CONCURRENCY + LEASE_AHEAD_MIN + 2);
      expect(started).toBeLessThan(10_000);
    });

    it.runIf(engine === 'postgres')('with two nodes on one store, within 2 × concurrency + 2', async () => {
      const { between, started } = await quietJobWait(2, 60);
      expect(between).toBeLessThanOrEqual(2 * CONCURRENCY + 2);
      expect(started).toBeLessThan(10_000);
    });
  });
});
