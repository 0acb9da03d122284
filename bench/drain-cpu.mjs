#!/usr/bin/env node
/**
 * CPU per job of a drain, both sides: the worker process and every PostgreSQL
 * process of the local server (backends, WAL writer, checkpointer,
 * autovacuum) over the drain's measured window (first → last run). Any bench
 * system, so a peer's cost per job sits beside Drover's: on 2 cores a rate
 * swings ±20 % between runs, CPU per job far less.
 *
 *   node bench/drain-cpu.mjs [--systems drover-postgres,graphile-worker-tuned] [--jobs 60000] [--concurrency 10] [--repeat 2] [--segment 5000]
 *
 * `--segment N` adds the drain's course: per N jobs from the first run, the
 * rate and both sides' CPU per job (the worker's from its own run series,
 * bench/lib/run-series.mjs), to see a cold process warm up.
 *
 * The server must run on this machine (CPU is read from /proc). Other users of
 * that server count too: run it when nothing else uses PostgreSQL, or give
 * `--data-dir` (a private cluster's, with BENCH_PG_URL pointing at it) to count
 * only that cluster's postmaster and its children.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { now } from './lib/clock.mjs';
import { cleanupAll } from './lib/processes.mjs';

const { values } = parseArgs({
  options: {
    systems: { type: 'string', default: 'drover-postgres,graphile-worker-tuned' },
    jobs: { type: 'string', default: '60000' },
    concurrency: { type: 'string', default: '10' },
    repeat: { type: 'string', default: '2' },
    'data-dir': { type: 'string' },
    segment: { type: 'string' },
  },
});
const n = Number(values.jobs);
const concurrency = Number(values.concurrency);
const segment = values.segment ? Number(values.segment) : 0;
const TICKS = 100; // USER_HZ on Linux
/** With --data-dir: that cluster's postmaster (first line of postmaster.pid); its children are its processes. */
const postmaster = values['data-dir'] ? readFileSync(`${values['data-dir']}/postmaster.pid`, 'utf8').split('\n')[0].trim() : null;

/**
 * CPU seconds of every postgres process seen so far, by PID. A process that
 * exits keeps its last sample, so the sum never goes backwards.
 */
const seen = new Map();
function sampleServer() {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('postgres')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (postmaster !== null && pid !== postmaster && f[1] !== postmaster) continue;
      seen.set(pid, (Number(f[11]) + Number(f[12])) / TICKS);
    } catch {
      // Gone between the listing and the read.
    }
  }
  return new Map(seen);
}

async function measure(systemId) {
  const system = (await import(`./systems/${systemId}.mjs`)).default({});
  await system.setup();
  const samples = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push({ at: now(), cpu: sampleServer() });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    const result = await system.drain(n, concurrency, 'inline', segment ? { seriesMs: 50 } : {});
    const end = now();
    sampling = false;
    await sampler;
    const nearest = (t) => samples.reduce((best, s) => (Math.abs(s.at - t) < Math.abs(best.at - t) ? s : best)).cpu;
    const before = nearest(end - result.seconds * 1000);
    const serverBetween = (from, to) => {
      let sum = 0;
      for (const [pid, cpu] of to) sum += cpu - (from.get(pid) ?? 0);
      return sum;
    };
    const server = serverBetween(before, nearest(end));
    const jobs = result.jobs;
    const course = segment ? courseOf(result, (from, to) => serverBetween(nearest(from), nearest(to))) : [];
    return { jobsPerSec: result.jobsPerSec, serverUs: (server / jobs) * 1e6, workerUs: (result.workerCpuSeconds / jobs) * 1e6, course };
  } finally {
    sampling = false;
    await system.teardown();
  }
}

/**
 * Per `segment` jobs: rate, worker and server CPU per job. A segment ends at
 * the end of the 50 ms bucket in which its last job ran (the worker read its
 * CPU at the first run of each bucket), so segments hold about `segment` jobs.
 */
function courseOf({ series, seriesCpuUs, firstRunAt }, serverSeconds) {
  const bucketMs = 50;
  const rows = [];
  let from = 0;
  let fromJobs = 0;
  let runs = 0;
  for (let i = 0; i < series.length; i++) {
    runs += series[i];
    if (runs - fromJobs < segment && i < series.length - 1) continue;
    const to = i + 1;
    const jobs = runs - fromJobs;
    const ms = (to - from) * bucketMs;
    const atFrom = firstRunAt + from * bucketMs;
    rows.push({ upTo: runs, jobsPerSec: jobs / (ms / 1000), workerUs: (seriesCpuUs[to] - seriesCpuUs[from]) / jobs, serverUs: (serverSeconds(atFrom, atFrom + ms) / jobs) * 1e6 });
    from = to;
    fromJobs = runs;
  }
  return rows;
}

const fmt = (v) => v.toFixed(1).padStart(7);
console.log(`drain of ${n} no-op jobs at concurrency ${concurrency}; CPU per job in µs (worker: whole process, its start included)`);
console.log(`${'system'.padEnd(24)} ${'jobs/s'.padStart(7)} ${'server'.padStart(7)} ${'worker'.padStart(7)} ${'total'.padStart(7)}`);
try {
  for (let round = 0; round < Number(values.repeat); round++) {
    for (const id of values.systems.split(',')) {
      const r = await measure(id);
      console.log(`${id.padEnd(24)} ${String(Math.round(r.jobsPerSec)).padStart(7)} ${fmt(r.serverUs)} ${fmt(r.workerUs)} ${fmt(r.serverUs + r.workerUs)}`);
      for (const c of r.course) console.log(`${`  … to job ${c.upTo}`.padEnd(24)} ${String(Math.round(c.jobsPerSec)).padStart(7)} ${fmt(c.serverUs)} ${fmt(c.workerUs)} ${fmt(c.serverUs + c.workerUs)}`);
    }
  }
} finally {
  await cleanupAll();
}
