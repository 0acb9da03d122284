#!/usr/bin/env node
/**
 * Cost as the work grows (issue 24, target 6): one worker process drains the
 * first N no-op jobs of a backlog of B queued jobs, for each backlog size, on
 * each Drover engine; the target is the largest backlog's rate at least 0.8×
 * the smallest's. With --plan, the lease statement's plan on the full table is
 * printed (PostgreSQL: EXPLAIN ANALYZE with buffers, rolled back; SQLite:
 * EXPLAIN QUERY PLAN), so a scan that grows with the backlog would show.
 * Opt-in, not part of `npm run bench`:
 *
 *   node bench/backlog.mjs [--systems drover-sqlite,drover-postgres] [--backlogs 20000,1000000]
 *                          [--jobs 20000] [--concurrency 10] [--repeat 1] [--plan]
 *
 * Writes bench/results/backlog.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/processes.mjs';
import { summarize } from './lib/stats.mjs';

const { values } = parseArgs({
  options: {
    systems: { type: 'string', default: 'drover-sqlite,drover-postgres' },
    backlogs: { type: 'string', default: '20000,1000000' },
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '10' },
    repeat: { type: 'string', default: '1' },
    plan: { type: 'boolean', default: false },
  },
});
const n = Number(values.jobs);
const c = Number(values.concurrency);
const repeat = Number(values.repeat);
const backlogs = values.backlogs.split(',').map(Number);
process.on('exit', cleanupAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

const fmt = (v) => Math.round(v).toLocaleString('en-US');
const results = [];
const lines = [`| drain the first ${fmt(n)} of B queued no-op jobs, 1 worker process, concurrency ${c} | B | jobs/s (median of ${repeat}) | worker CPU µs per job | vs smallest B | seed (s) |`, '|---|---:|---:|---:|---:|---:|'];
for (const id of values.systems.split(',')) {
  const { default: create } = await import(`./systems/${id}.mjs`);
  const system = create();
  await system.setup();
  const rows = [];
  for (const backlog of backlogs) {
    const runs = [];
    for (let i = 0; i < repeat; i++) {
      const r = await system.drainBacklog(n, backlog, c, { plan: values.plan && i === 0 });
      process.stderr.write(`[backlog] ${system.name}, ${fmt(backlog)} queued: ${fmt(r.jobsPerSec)} jobs/s (seeded in ${r.seedSeconds.toFixed(1)} s)\n`);
      if (r.leasePlan) process.stderr.write(`[backlog] ${system.name}, lease plan with ${fmt(backlog)} queued:\n${r.leasePlan}\n`);
      runs.push(r);
    }
    rows.push({ backlog, runs, jobsPerSec: summarize(runs.map((r) => r.jobsPerSec)), cpuUsPerJob: summarize(runs.map((r) => (r.workerCpuSeconds * 1e6) / r.jobs)) });
  }
  for (const row of rows) {
    const seed = summarize(row.runs.map((r) => r.seedSeconds)).median;
    lines.push(`| ${system.name} | ${fmt(row.backlog)} | ${fmt(row.jobsPerSec.median)} | ${fmt(row.cpuUsPerJob.median)} | ${(row.jobsPerSec.median / rows[0].jobsPerSec.median).toFixed(2)}× | ${seed.toFixed(1)} |`);
  }
  results.push({ system: system.name, rows });
}
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/backlog.json', import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), jobs: n, concurrency: c, results }, null, 2)}\n`);
