#!/usr/bin/env node
/**
 * Transactions per job during a drain, from the SQLite engine's group-commit
 * counters (`store.stats`). A diagnostic, not part of `npm run bench`: the node
 * runs in this process (no HTTP), so the rate is a little above the bench's.
 *
 *   node bench/txn-stats.mjs [--jobs 20000] [--concurrency 10] [--sync FULL|NORMAL] [--isolation inline|thread]
 *
 * With `--isolation thread` the handler runs in worker threads, which load it
 * from a config module written to the temp dir; the drain ends when the store
 * counts every job succeeded (polled every 5 ms), and its time includes
 * starting the threads, so only the transaction counts compare with inline.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { now } from './lib/clock.mjs';
import { cleanupAll, makeTempDir, removeTempDir } from './lib/processes.mjs';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '10' },
    sync: { type: 'string', default: 'FULL' },
    isolation: { type: 'string', default: 'inline' },
  },
});
const n = Number(values.jobs);
const concurrency = Number(values.concurrency);
const threaded = values.isolation === 'thread';
if (!['inline', 'thread'].includes(values.isolation)) throw new Error(`--isolation must be inline or thread, got ${values.isolation}`);
process.on('exit', cleanupAll);

const dist = new URL('../dist/', import.meta.url);
const { resolveConfig } = await import(new URL('core/config.js', dist).href);
const { startNode } = await import(new URL('node/start-node.js', dist).href);
const { createLogger } = await import(new URL('obs/logger.js', dist).href);
const logger = createLogger({ level: 'warn', destination: process.stderr });

const dir = makeTempDir('drover-txn-stats-');
const databaseUrl = join(dir, 'drover.db');
const configFor = (handler) =>
  resolveConfig({ handlers: [handler], databaseUrl, log: { level: 'warn' }, sqlite: { synchronous: values.sync }, rateLimit: { enabled: false } }, {}, {});
try {
  // Seed with leasing stopped, then drain with a fresh node on the same file.
  const seeder = await startNode({ config: configFor({ name: 'noop', run() {} }), listen: false, print: () => {}, logger });
  seeder.runtime.dispatcher.stopLeasing();
  for (let from = 0; from < n; from += 1000) {
    await seeder.runtime.enqueueJobs(Array.from({ length: Math.min(1000, n - from) }, (_, i) => ({ handler: 'noop', payload: { i: from + i } })));
  }
  await seeder.shutdown(0);

  let count = 0;
  let first = 0;
  let last = 0;
  let finished;
  const done = new Promise((resolve) => (finished = resolve));
  const run = () => {
    last = now();
    if (count === 0) first = last;
    if (++count === n) finished();
  };
  let node;
  let before;
  if (threaded) {
    const configPath = join(dir, 'threaded.config.mjs');
    writeFileSync(configPath, `export default { handlers: [{ name: 'noop', isolation: 'thread', concurrency: ${concurrency}, run() {} }] };\n`);
    node = await startNode({ config: configFor({ name: 'noop', isolation: 'thread', concurrency, run() {} }), configPath, listen: false, print: () => {}, logger });
    before = node.store.stats;
    first = now();
    for (;;) {
      const succeeded = (await node.store.queueStats()).reduce((sum, q) => sum + q.counts.succeeded, 0);
      if (succeeded >= n) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    last = now();
  } else {
    node = await startNode({ config: configFor({ name: 'noop', concurrency, run }), listen: false, print: () => {}, logger });
    before = node.store.stats;
    await done;
  }
  await new Promise((resolve) => setTimeout(resolve, 50)); // let the last completions commit
  const after = node.store.stats;
  await node.shutdown(0);

  const txns = after.batches - before.batches;
  const ops = after.ops - before.ops;
  const ms = last - first;
  process.stdout.write(
    `${n} jobs, concurrency ${concurrency}, isolation ${values.isolation}, synchronous=${values.sync}: ${Math.round((n - 1) / (ms / 1000))} jobs/s; ` +
      `${txns} transactions (${(n / txns).toFixed(1)} jobs and ${(ops / txns).toFixed(1)} ops per transaction), ${Math.round((ms * 1000) / txns)} µs per transaction\n`,
  );
} finally {
  removeTempDir(dir);
}
