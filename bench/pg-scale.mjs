#!/usr/bin/env node
/**
 * Drover on PostgreSQL, drain throughput with 1, 2 and 4 worker processes
 * (issue 5's benchmark extra): `node bench/pg-scale.mjs [--jobs N] [--concurrency C] [--repeat R]`.
 * Each run: a throwaway schema, N queued no-op jobs, P `drover start` processes
 * at handler concurrency C; jobs/s from the first handler run in any process to
 * the last. Prints a small markdown table; writes bench/results/pg-scale.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cleanupAll } from './lib/processes.mjs';
import { summarize } from './lib/stats.mjs';
import create from './systems/drover-postgres.mjs';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '50' }, repeat: { type: 'string', default: '1' } } });
const n = Number(values.jobs);
const c = Number(values.concurrency);
const repeat = Number(values.repeat);
process.on('exit', cleanupAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

const system = create();
await system.setup();
const rows = [];
for (const processes of [1, 2, 4]) {
  const runs = [];
  for (let i = 0; i < repeat; i++) {
    const r = await system.drainProcesses(n, c, processes);
    process.stderr.write(`[pg-scale] ${processes} process(es): ${Math.round(r.jobsPerSec)} jobs/s, shares ${r.perProcess.join('/')}\n`);
    runs.push(r);
  }
  rows.push({ processes, runs, jobsPerSec: summarize(runs.map((r) => r.jobsPerSec)) });
}
const fmt = (v) => Math.round(v).toLocaleString('en-US');
const lines = [`| drover postgres, drain ${fmt(n)} no-op jobs, concurrency ${c} per process | jobs/s (median of ${repeat}) | vs 1 process |`, '|---|---:|---:|'];
for (const row of rows) lines.push(`| ${row.processes} worker process${row.processes > 1 ? 'es' : ''} | ${fmt(row.jobsPerSec.median)} | ${(row.jobsPerSec.median / rows[0].jobsPerSec.median).toFixed(2)}× |`);
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/pg-scale.json', import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), jobs: n, concurrency: c, rows }, null, 2)}\n`);
