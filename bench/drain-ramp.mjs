#!/usr/bin/env node
/**
 * A drain's ramp: runs per 50 ms from the first run, so the jobs/s of the
 * bench's 20,000-job drain (first run → last run) can be split into the
 * steady rate and the time lost before reaching it. Any bench system (the
 * peers' workers record the same series).
 *
 *   node bench/drain-ramp.mjs [--system drover-postgres] [--jobs 20000] [--concurrency 10,50] [--repeat 1] [--bucket 50]
 *
 * Per drain: jobs/s as the bench counts it; the steady rate (the runs of the
 * middle buckets, 25 %–90 % of the drain's time, per ms); "lost": the drain's
 * time minus its jobs at the steady rate (what the ramp and the tail cost);
 * "90 % at": the first bucket from which a 150 ms rolling rate stays at or
 * above 90 % of the steady one until 25 % of the drain; then the buckets
 * themselves (runs per ms) up to 1 s.
 */
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/processes.mjs';

const { values } = parseArgs({
  options: {
    system: { type: 'string', default: 'drover-postgres' },
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '10,50' },
    repeat: { type: 'string', default: '1' },
    bucket: { type: 'string', default: '50' },
  },
});
const n = Number(values.jobs);
const bucketMs = Number(values.bucket);

process.on('exit', cleanupAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/** The ramp figures of one drain's `series` (runs per `bucketMs`). */
export function rampOf(series, ms) {
  const steadyFrom = Math.floor(series.length * 0.25);
  const steadyTo = Math.max(steadyFrom + 1, Math.floor(series.length * 0.9));
  const steadyRuns = series.slice(steadyFrom, steadyTo).reduce((a, b) => a + b, 0);
  const steadyPerMs = steadyRuns / ((steadyTo - steadyFrom) * bucketMs);
  const total = series.reduce((a, b) => a + b, 0);
  const rolling = (i) => (series[i] + (series[i + 1] ?? 0) + (series[i + 2] ?? 0)) / (3 * bucketMs);
  let reached = steadyFrom;
  for (let i = steadyFrom - 1; i >= 0; i--) {
    if (rolling(i) < 0.9 * steadyPerMs) break;
    reached = i;
  }
  return { steadyPerMs, lostMs: ms - total / steadyPerMs, reachedMs: reached * bucketMs };
}

const { default: create } = await import(`./systems/${values.system}.mjs`);
const system = create({});
await system.setup();
try {
  console.log(`${values.system}: drain of ${n} no-op jobs; buckets of ${bucketMs} ms (runs per ms) from the first run`);
  for (let r = 0; r < Number(values.repeat); r++) {
    for (const c of values.concurrency.split(',').map(Number)) {
      const result = await system.drain(n, c, 'inline', { seriesMs: bucketMs });
      const { steadyPerMs, lostMs, reachedMs } = rampOf(result.series, result.seconds * 1000);
      const head = result.series.slice(0, Math.ceil(1000 / bucketMs)).map((v) => (v / bucketMs).toFixed(1));
      console.log(
        `c${c}: ${Math.round(result.jobsPerSec)} jobs/s over ${Math.round(result.seconds * 1000)} ms, steady ${Math.round(steadyPerMs * 1000)} jobs/s, ` +
          `lost ${Math.round(lostMs)} ms, 90 % at ${reachedMs} ms, first run ${Math.round(result.firstRunAfterSpawnMs)} ms after spawn`,
      );
      console.log(`  ${head.join(' ')}`);
    }
  }
} finally {
  await system.teardown();
}
