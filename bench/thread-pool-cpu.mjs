#!/usr/bin/env node
/**
 * The thread pool's main-thread CPU per job (not a test): `jobs` no-op jobs
 * of an `isolation: 'thread'` handler (the `quick` handler of
 * test/supervision/fixtures/pool.config.mjs, one thread) through
 * `ThreadPool.run`, 8 in flight, after a warm-up. Only the main thread's
 * CPU counts (/proc/self/task/<pid>/stat, 10 ms ticks): the thread's own
 * work is the handler's, not the pool's. For an A/B, point it at a build:
 *
 *   node bench/thread-pool-cpu.mjs [--dist /work/main/dist] [--jobs 100000]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: {
    dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) },
    jobs: { type: 'string', default: '100000' },
  },
});
const n = Number(values.jobs);
const IN_FLIGHT = 8;
const load = (path) => import(pathToFileURL(`${values.dist}/${path}`).href);
const { loadConfigModule } = await load('cli/load-config.js');
const { resolveConfig } = await load('core/config.js');
const { LazyAbortController } = await load('runtime/job-runner.js');
const { ThreadPool } = await load('runtime/thread-pool.js');

const configPath = fileURLToPath(new URL('../test/supervision/fixtures/pool.config.mjs', import.meta.url));
const config = resolveConfig({ ...(await loadConfigModule(configPath)), databaseUrl: ':memory:' }, {});
const handler = config.handlers.get('quick');
const pool = new ThreadPool({ configPath, restartInitialMs: 1, restartMaxMs: 10 });
let seq = 0;
const run = () => {
  const job = { id: `job-${++seq}`, handler: 'quick', queue: 'default', attempts: 1, maxAttempts: 3, payload: { n: seq }, event: null };
  return pool.run({ handler, job, controller: new LazyAbortController(), log: () => null, heartbeat: async () => true, isShutdownAborted: () => false });
};
const wave = () => Promise.all(Array.from({ length: IN_FLIGHT }, run));
/** The main thread's CPU so far, in ticks of 10 ms (utime + stime). */
function mainThreadTicks() {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

for (let i = 0; i < 2_000; i += IN_FLIGHT) await wave();
const ticks = mainThreadTicks();
const started = performance.now();
for (let i = 0; i < n; i += IN_FLIGHT) await wave();
const cpuUs = ((mainThreadTicks() - ticks) * 10_000) / n;
const wallUs = ((performance.now() - started) * 1_000) / n;
console.log(`thread pool, ${n} no-op jobs, ${IN_FLIGHT} in flight: main-thread CPU ${cpuUs.toFixed(2)} µs/job, wall ${wallUs.toFixed(2)} µs/job`);
await pool.close();
