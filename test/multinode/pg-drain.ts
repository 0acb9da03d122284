/**
 * Quick drain measurement on the PostgreSQL engine (not a test; run with
 * `npx tsx test/multinode/pg-drain.ts [jobs] [concurrency] [runs] [--preload]`).
 * One in-process node on a fresh schema, logging at warn (as `drover start`
 * in production would; the test helper's debug log sink costs more than the
 * store): enqueue `jobs` no-op jobs in batches of 1000 through
 * `runtime.enqueueJobs` and report jobs/s from the first enqueue (with
 * --preload: from the dispatcher's start, all jobs already queued) to the last
 * success. PostgreSQL at DROVER_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
 * `npm run bench` (separate worker processes) is the reference measurement.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startNode } from '../../src/node/start-node.js';
import { resolveConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/obs/logger.js';
import { waitFor } from '../helpers/wait-for.js';

const url = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const jobs = Number(process.argv[2] ?? 20_000);
const concurrency = Number(process.argv[3] ?? 50);
const runs = Number(process.argv[4] ?? 3);
const preload = process.argv.includes('--preload');

async function once(): Promise<number> {
  const schema = `drover_drain_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const config = resolveConfig({ databaseUrl: url, postgres: { schema }, handlers: [{ name: 'noop', concurrency, run: async () => {} }] }, {});
  const node = await startNode({ config, listen: false, print: () => undefined, logger: createLogger({ level: 'warn' }) });
  try {
    let done = 0;
    node.runtime.lifecycle.on('job:succeeded', () => void done++);
    if (preload) node.runtime.dispatcher.stopLeasing();
    let started = performance.now();
    for (let i = 0; i < jobs; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, jobs - i) }, () => ({ handler: 'noop' }));
      await node.runtime.enqueueJobs(batch);
    }
    if (preload) {
      started = performance.now();
      node.runtime.dispatcher.start();
    }
    await waitFor(() => done >= jobs, { timeoutMs: 300_000, intervalMs: 5 });
    return jobs / ((performance.now() - started) / 1000);
  } finally {
    await node.shutdown(1_000);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

const results: number[] = [];
for (let r = 0; r < runs; r++) results.push(await once());
results.sort((a, b) => a - b);
process.stdout.write(
  `postgres drain ${jobs} no-op jobs, concurrency ${concurrency}${preload ? ' (preloaded)' : ''}: ${results.map((r) => Math.round(r)).join(', ')} jobs/s (median ${Math.round(results[Math.floor(results.length / 2)]!)})\n`,
);
