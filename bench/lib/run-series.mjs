/**
 * A drain's course, recorded in the worker process: runs per `ms` bucket from
 * the first run, and the process's CPU (µs, every thread) at the first run of
 * each bucket, and once more at the report. Drover's bench worker and the peers' share it, so a drain's
 * ramp (bench/drain-ramp.mjs) and its warm-up, the CPU per job as the drain
 * goes on (bench/drain-cpu.mjs --segment), read alike for every system. One
 * array write per run; `process.cpuUsage()` once per bucket.
 */
export function runSeries(ms) {
  const runs = [];
  const cpuUs = [];
  let first = 0;
  return {
    /** A run at `t` (ms, bench/lib/clock.mjs). */
    note(t) {
      if (runs.length === 0) first = t;
      const bucket = Math.floor((t - first) / ms);
      if (bucket >= runs.length) {
        const { user, system } = process.cpuUsage();
        while (runs.length <= bucket) {
          runs.push(0);
          cpuUs.push(user + system);
        }
      }
      runs[bucket]++;
    },
    /** Also the CPU now (at the last run), which closes the last bucket. */
    report() {
      const { user, system } = process.cpuUsage();
      return { series: runs, seriesCpuUs: [...cpuUs, user + system], seriesMs: ms };
    },
  };
}
