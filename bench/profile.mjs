#!/usr/bin/env node
/**
 * Profile the worker process during one bench workload: the workers run under
 * `node --cpu-prof`, and each profile is summarised (self time by area and by
 * function, Drover functions by inclusive time), cut to the measured window
 * when the workload reports one (drain: first→last run; latency: first→last
 * recorded start).
 *
 *   node bench/profile.mjs drain [--jobs 20000] [--concurrency 10]
 *   node bench/profile.mjs drain-thread [--jobs 20000] [--concurrency 10]   (isolation: 'thread'; main thread's profile, whole process)
 *   node bench/profile.mjs latency [--rate 200] [--seconds 10]
 *   node bench/profile.mjs enqueue-single [--jobs 20000] [--in-flight 16]
 *   node bench/profile.mjs enqueue-bulk [--jobs 20000] [--batch 500]
 *   options: --system drover-sqlite, --top 25
 *
 * Profiles and summaries go to bench/results/profiles/<workload>-<time>/ (not committed).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatSummary, summarizeProfile } from './lib/cpuprofile.mjs';
import { cleanupAll } from './lib/processes.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    system: { type: 'string', default: 'drover-sqlite' },
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '10' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    'in-flight': { type: 'string', default: '16' },
    batch: { type: 'string', default: '500' },
    top: { type: 'string', default: '25' },
  },
});
const workload = positionals[0];
const jobs = Number(values.jobs);
const runs = {
  drain: (s) => s.drain(jobs, Number(values.concurrency)),
  'drain-thread': (s) => s.drain(jobs, Number(values.concurrency), 'thread'),
  latency: (s) => s.latency(Number(values.rate), Number(values.seconds)),
  'enqueue-single': (s) => s.enqueueSingle(jobs, Number(values['in-flight'])),
  'enqueue-bulk': (s) => s.enqueueBulk(jobs, Number(values.batch)),
};
if (!runs[workload]) {
  process.stderr.write(`usage: node bench/profile.mjs ${Object.keys(runs).join('|')} [options]\n`);
  process.exit(2);
}

process.on('exit', cleanupAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const dir = fileURLToPath(new URL(`./results/profiles/${workload}-${stamp}/`, import.meta.url));
mkdirSync(dir, { recursive: true });

const { default: create } = await import(`./systems/${values.system}.mjs`);
const system = create({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
await system.setup();
let result;
try {
  result = await runs[workload](system);
} finally {
  await system.teardown();
}
writeFileSync(join(dir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);

// The measured worker's profile (its file name carries its pid and thread id; 0 is the main thread,
// handler threads write their own); workers exit gracefully, which writes it.
const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
const mine = files.find((f) => f.includes(`.${result.workerPid}.0.`)) ?? files.find((f) => f.includes(`.${result.workerPid}.`)) ?? files[0];
if (!mine) throw new Error(`no .cpuprofile in ${dir}; did the worker exit cleanly?`);
const window = result.profileWindowUs ?? null;
const summary = summarizeProfile(JSON.parse(readFileSync(join(dir, mine), 'utf8')), { window });
const headline = Object.entries(result)
  .filter(([, v]) => typeof v === 'number')
  .map(([k, v]) => `${k}=${Math.round(v * 100) / 100}`)
  .join(' ');
const text = `${workload} (${values.system}): ${headline}\n${window ? 'window: measured interval only\n' : 'window: whole process\n'}\n${formatSummary(summary, { top: Number(values.top) })}\n`;
writeFileSync(join(dir, 'summary.txt'), text);
process.stdout.write(`${text}\nprofile: ${relative(process.cwd(), join(dir, mine))}\n`);
