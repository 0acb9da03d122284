/**
 * Quick in-process drain measurement for the metrics/tracing overhead check
 * (not a test; run with `npx tsx test/obs/drain-bench.ts [jobs] [concurrency] [runs]`).
 * Enqueues `jobs` no-op jobs in batches of 1000 through `runtime.enqueueJobs`
 * on a node started with `startTestNode`, and reports jobs/s from the first
 * enqueue to the last success, and this process's CPU time per job (user +
 * system), which a busy machine disturbs far less than wall-clock throughput.
 */
import { startTestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const jobs = Number(process.argv[2] ?? 20_000);
const concurrency = Number(process.argv[3] ?? 50);
const runs = Number(process.argv[4] ?? 3);

async function once(): Promise<{ rate: number; cpuUs: number }> {
  const node = await startTestNode({ handlers: [{ name: 'noop', concurrency, run: async () => {} }] });
  try {
    let done = 0;
    node.runtime.lifecycle.on('job:succeeded', () => void done++);
    const started = performance.now();
    const cpu = process.cpuUsage();
    for (let i = 0; i < jobs; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, jobs - i) }, () => ({ handler: 'noop' }));
      await node.runtime.enqueueJobs(batch);
    }
    await waitFor(() => done >= jobs, { timeoutMs: 120_000, intervalMs: 5 });
    const used = process.cpuUsage(cpu);
    return { rate: jobs / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / jobs };
  } finally {
    await node.close();
  }
}

const results: Array<{ rate: number; cpuUs: number }> = [];
for (let r = 0; r < runs; r++) results.push(await once());
const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
process.stdout.write(
  `drain ${jobs} no-op jobs, concurrency ${concurrency}: ${results.map((r) => Math.round(r.rate)).join(', ')} jobs/s (median ${Math.round(median(results.map((r) => r.rate)))}); ` +
    `CPU per job ${results.map((r) => r.cpuUs.toFixed(1)).join(', ')} µs (median ${median(results.map((r) => r.cpuUs)).toFixed(1)})\n`,
);
